"""The node's audit log: append-only, hash-chained, keyed, verifiable.

Why each piece:

* **Chained**: every record carries the MAC of the record before it, so editing,
  deleting or reordering any record breaks the chain from there on (``verify``).
* **Keyed** (HMAC-SHA256 with the node's audit key, kept outside the database): someone
  who can write the database but not read ``VIGIL_HOME/keys`` cannot recompute a valid
  chain after tampering.
* **Gap-free ids** handed out under a lock on the single ``audit_head`` row: appends from
  several workers are serialised, ids follow the chain, and a deleted record is a gap.
* **Anchor file** (``VIGIL_HOME/audit/anchor.json``, ``vigil.audit.anchor``): the newest
  (id, MAC) written after each commit, outside the database and keyed, so cutting records
  off the end is detected too.
* **Witnessed heads** (``vigil.audit.witness``): peers keep this node's signed heads, so
  even a rewind of both the log and the anchor by someone holding the key is detected.
* **No signals**: a match request is recorded with counts and a keyed digest of the
  queried signals, so one can later check whether a given batch was queried, but the log
  never holds a hash list (hash lists are sensitive: PDQ codes can be partly inverted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.orm import Session

from vigil.audit.anchor import AnchorFile, check_anchor, read_anchor
from vigil.audit.head import HeadHint
from vigil.audit.pg import PgAppender
from vigil.audit.records import (
    GENESIS,
    OUTCOMES,
    AuditEntry,
    VerifyReport,
    canonical,
    derive_key,
    entry_of,
    plain_detail,
    timestamp,
)
from vigil.audit.witness import SignedHead, check_head
from vigil.store.models import utcnow
from vigil.store.models_node import AuditHead, AuditRecord

log = logging.getLogger("vigil.audit")
class _GroupCommitter:
    """Group commit for a server process: one transaction for every append that arrives
    while the previous one is committing.

    Why: appends serialise on the chain's head row, and one commit per request capped a
    node at a few hundred audited requests a second (bench/HISTORY.md). Callers still
    wait for their own record to be committed — nothing is served unaudited — but under
    load they share the lock, the commit and the anchor write.
    """

    MAX_BATCH = 500

    def __init__(self, flush: Callable[[list[dict[str, Any]]], list[AuditEntry]],
                 hold: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
                 ) -> None:
        self._flush = flush
        #: the lock appends take (the host's, on PostgreSQL): taken before the batch is,
        #: so the records that arrived while another process committed go in this batch
        #: rather than the next (fewer, bigger commits when the workers contend)
        self._hold = hold or contextlib.nullcontext
        #: each record with its waiter: a thread's Future, or (event loop, asyncio future)
        self._queue: list[tuple[dict[str, Any], Any]] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._run, name="vigil-audit", daemon=True).start()

    def submit(self, rec: dict[str, Any]) -> AuditEntry:
        return self.enqueue(rec).result()

    def enqueue(self, rec: dict[str, Any]) -> Future[AuditEntry]:
        """Queue a record; the future is done once it is committed."""
        fut: Future[AuditEntry] = Future()
        with self._cv:
            self._queue.append((rec, fut))
            self._cv.notify()
        return fut

    def enqueue_async(self, rec: dict[str, Any], on_commit: Callable[[], None] | None = None,
                      ) -> asyncio.Future[AuditEntry]:
        """Queue a record from a coroutine; the asyncio future is done once it is
        committed. The waiters of one event loop are woken together, once per batch (a
        wake-up per record cost the loop a self-pipe write and a callback each).

        ``on_commit``, if given, runs on the event loop the moment the batch is known
        committed, before any waiting coroutine resumes. Why: a coroutine woken by the
        future resumes only after everything already queued on the loop — under load, the
        searches of the requests that arrived meanwhile — so a response sent from here
        goes out up to a whole burst of work earlier (bench/HISTORY.md).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[AuditEntry] = loop.create_future()
        with self._cv:
            self._queue.append((rec, (loop, fut, on_commit)))
            self._cv.notify()
        return fut

    def _take(self) -> list[tuple[dict[str, Any], Any]]:
        with self._cv:
            batch = self._queue[:self.MAX_BATCH]
            del self._queue[:self.MAX_BATCH]
        return batch

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
            batch: list[tuple[dict[str, Any], Any]] = []
            try:
                with self._hold():
                    batch = self._take()
                    outcomes: list[Any] = self._flush([r for r, _ in batch])
                ok = True
            except Exception as exc:  # every waiter learns its record was not written
                batch = batch or self._take()
                outcomes, ok = [exc] * len(batch), False
            by_loop: dict[Any, list[tuple[asyncio.Future[AuditEntry], Any, Any]]] = {}
            for (_, waiter), outcome in zip(batch, outcomes, strict=True):
                if isinstance(waiter, Future):
                    if ok:
                        waiter.set_result(outcome)
                    else:
                        waiter.set_exception(outcome)
                else:
                    by_loop.setdefault(waiter[0], []).append((waiter[1], outcome, waiter[2]))
            for loop, items in by_loop.items():
                # RuntimeError: that loop is closed, nobody waits any more
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, items, ok)


def _settle(items: list[tuple[asyncio.Future[AuditEntry], Any, Any]], ok: bool) -> None:
    """On the event loop: give each waiting coroutine its committed entry (or the error),
    after running the ``on_commit`` callbacks of the committed ones."""
    for fut, outcome, on_commit in items:
        if fut.cancelled():
            continue
        if not ok:
            fut.set_exception(outcome)
            continue
        if on_commit is not None:
            _run_on_commit(on_commit)
        fut.set_result(outcome)


def _run_on_commit(on_commit: Callable[[], None]) -> None:
    """Run a commit callback; its failure is logged, never raised: the record is committed
    either way, and in a batch it must not keep the others from theirs."""
    try:
        on_commit()
    except Exception:
        log.exception("audit on_commit callback failed")


class AuditLog:
    """Appends to and reads the audit log of one store with one node key."""

    def __init__(self, engine: Engine, key: bytes, anchor_dir: Path | None = None,
                 group_commit: bool = False) -> None:
        self.engine = engine
        self._chain_key = derive_key(key, b"chain")
        self._digest_key = derive_key(key, b"signals")
        self.anchor_dir = anchor_dir
        self._pg = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        self._pg_appender = (PgAppender(engine, HeadHint(anchor_dir), self._chain)
                             if self._pg else None)
        hold = self._pg_appender.hint.locked if self._pg_appender is not None else None
        self._committer = _GroupCommitter(self._append_many, hold) if group_commit else None
        self._key = key
        self._anchor_file = AnchorFile(anchor_dir, key) if anchor_dir is not None else None

    # ---- writing ---------------------------------------------------------------------------

    def digest_signals(self, signals: Iterable[tuple[str, str]]) -> str:
        """A keyed digest of a set of signals: recomputable only with the node's key."""
        text = "\n".join(sorted({f"{t}:{v}" for t, v in signals}))
        return hmac.digest(self._digest_key, text.encode(), "sha256").hex()

    def mac(self, entry: AuditEntry) -> str:
        return hmac.digest(self._chain_key, canonical(entry.body()), "sha256").hex()

    def append(self, action: str, *, outcome: str = "ok", agency: str | None = None,
               actor: str | None = None, target: str | None = None, remote: str | None = None,
               detail: dict[str, Any] | None = None) -> AuditEntry:
        """Append one record; safe from many threads, processes and hosts at once.

        Returns only once the record is committed. With group commit on, concurrent
        callers of this process share one transaction (see ``_GroupCommitter``).
        """
        rec = self._record(action, outcome, agency, actor, target, remote, detail)
        if self._committer is not None:
            return self._committer.submit(rec)
        return self._append_many([rec])[0]

    async def append_async(self, action: str, *, outcome: str = "ok",
                           agency: str | None = None, actor: str | None = None,
                           target: str | None = None, remote: str | None = None,
                           detail: dict[str, Any] | None = None,
                           on_commit: Callable[[], None] | None = None) -> AuditEntry:
        """``append`` for async code: waits for the commit without holding a thread
        (with group commit on; otherwise the append runs in a worker thread).

        ``on_commit`` runs on the event loop once the record is committed, before this
        returns (with group commit: as soon as the batch is, see ``enqueue_async``); an
        exception from it is logged, not raised."""
        rec = self._record(action, outcome, agency, actor, target, remote, detail)
        if self._committer is not None:
            return await self._committer.enqueue_async(rec, on_commit)
        entry = (await asyncio.to_thread(self._append_many, [rec]))[0]
        if on_commit is not None:
            _run_on_commit(on_commit)
        return entry

    @staticmethod
    def _record(action: str, outcome: str, agency: str | None, actor: str | None,
                target: str | None, remote: str | None,
                detail: dict[str, Any] | None) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        return {"at": utcnow(), "agency": agency, "actor": actor, "action": action,
                "outcome": outcome, "target": target, "remote": remote,
                "detail": plain_detail(detail or {})}

    def _append_many(self, recs: list[dict[str, Any]]) -> list[AuditEntry]:
        """Chain and commit records in one transaction, then move the anchor once.

        On PostgreSQL this takes the driver's own path (``_append_many_pg``: one or two
        round trips); elsewhere, and as its reference, ``_append_many_core``.
        """
        if self._pg:
            return self._append_many_pg(recs)
        return self._append_many_core(recs)

    def _chain(self, recs: list[dict[str, Any]], last_id: int, last_hash: str,
               ) -> list[AuditEntry]:
        """The records as entries after (last_id, last_hash), each with its MAC."""
        out: list[AuditEntry] = []
        key = self._chain_key
        for r in recs:
            # the body ``AuditEntry.body()`` gives, built here: no entry without its MAC
            # and no ``replace`` per record (``verify`` recomputes through ``mac``)
            body = {"id": last_id + 1, "at": timestamp(r["at"]), "agency": r["agency"],
                    "actor": r["actor"], "action": r["action"], "outcome": r["outcome"],
                    "target": r["target"], "remote": r["remote"], "detail": r["detail"],
                    "prev": last_hash}
            mac = hmac.digest(key, canonical(body), "sha256").hex()
            out.append(AuditEntry(last_id + 1, r["at"], r["agency"], r["actor"], r["action"],
                                  r["outcome"], r["target"], r["remote"], r["detail"],
                                  last_hash, mac))
            last_id, last_hash = last_id + 1, mac
        return out

    def _append_many_core(self, recs: list[dict[str, Any]]) -> list[AuditEntry]:
        """The reference append: SQLAlchemy Core, four round trips whatever the number of
        records (the head row's lock, one executemany insert, the head, the commit)."""
        with self.engine.begin() as conn:
            # Writing the head row first takes its lock (row lock on PostgreSQL, the write
            # lock on SQLite) and returns it as it is now: appends queue here, one chain,
            # no forks.
            head = conn.execute(update(AuditHead).where(AuditHead.id == 1)
                                .values(last_id=AuditHead.last_id)
                                .returning(AuditHead.last_id, AuditHead.last_hash)).first()
            if head is None:
                raise RuntimeError("audit_head row missing: the store is not migrated")
            out = self._chain(recs, *head)
            conn.execute(insert(AuditRecord), [
                {"id": e.id, "at": e.at, "agency": e.agency, "actor": e.actor,
                 "action": e.action, "outcome": e.outcome, "target": e.target,
                 "remote": e.remote, "detail": e.detail, "prev_hash": e.prev_hash,
                 "hash": e.hash} for e in out])
            conn.execute(update(AuditHead).where(AuditHead.id == 1)
                         .values(last_id=out[-1].id, last_hash=out[-1].hash))
        self._anchor(out[-1].id, out[-1].hash)
        return out

    def _append_many_pg(self, recs: list[dict[str, Any]]) -> list[AuditEntry]:
        """The PostgreSQL driver path (``vigil.audit.pg``), then the anchor."""
        assert self._pg_appender is not None
        out = self._pg_appender.append(recs)
        self._anchor(out[-1].id, out[-1].hash)
        return out

    def _anchor(self, last_id: int, mac: str) -> None:
        """Move the anchor file forward to the record just committed (``AnchorFile``)."""
        if self._anchor_file is not None:
            self._anchor_file.advance(last_id, mac)

    def head(self) -> tuple[int, str]:
        """The chain's head as the store records it: (last id, its MAC); (0, GENESIS) for
        an empty log. What this node signs for its witnesses."""
        with Session(self.engine) as s:
            h = s.get(AuditHead, 1)
            return (0, GENESIS) if h is None else (int(h.last_id), str(h.last_hash))

    # ---- reading ---------------------------------------------------------------------------

    def records(self, *, action: str | None = None, actor: str | None = None,
                agency: str | None = None, outcome: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                after_id: int = 0, limit: int = 100,
                with_anonymous: bool = False) -> list[AuditEntry]:
        """Records in id order, filtered (prefix match on ``action``: ``bank.`` = all bank).

        ``with_anonymous`` adds records of no agency (failed logins) to an agency filter.
        """
        q = select(AuditRecord).where(AuditRecord.id > after_id)
        if action:
            q = q.where(AuditRecord.action.startswith(action, autoescape=True))
        if actor:
            q = q.where(AuditRecord.actor == actor)
        if agency:
            cond = AuditRecord.agency == agency
            q = q.where(or_(cond, AuditRecord.agency.is_(None)) if with_anonymous else cond)
        if outcome:
            q = q.where(AuditRecord.outcome == outcome)
        if since:
            q = q.where(AuditRecord.at >= since)
        if until:
            q = q.where(AuditRecord.at < until)
        with Session(self.engine) as s:
            return [entry_of(r) for r in s.scalars(q.order_by(AuditRecord.id).limit(limit))]

    def iter_all(self, chunk: int = 5000) -> Iterator[AuditEntry]:
        with Session(self.engine) as s:
            q = select(AuditRecord).order_by(AuditRecord.id).execution_options(yield_per=chunk)
            for r in s.scalars(q):
                yield entry_of(r)

    def verify(self, max_problems: int = 20, witnessed: Iterable[tuple[str, SignedHead]] = (),
               public_key: Ed25519PublicKey | None = None) -> VerifyReport:
        """Check the whole chain, the head row, the anchor, and every witnessed head.

        ``witnessed``: (witnessing agency, head) pairs, heads of this node that peers kept
        (checked against ``public_key``, this node's): a record a peer saw that is now
        missing or different is reported, whoever rewound the log and with whatever key.
        """
        rep = VerifyReport()

        def problem(msg: str) -> None:
            if len(rep.problems) < max_problems:
                rep.problems.append(msg)

        heads = list(witnessed)
        wanted = {h.id for _, h in heads}
        seen: dict[int, str] = {}  # MACs of the records peers witnessed
        expected_id, prev = 1, GENESIS
        for e in self.iter_all():
            rep.records += 1
            if e.id != expected_id:
                problem(f"record {e.id}: expected id {expected_id} "
                        f"({'records deleted' if e.id > expected_id else 'ids out of order'})")
            if e.prev_hash != prev:
                problem(f"record {e.id}: does not chain to the record before it "
                        "(a record before it was edited, deleted or moved)")
            if not hmac.compare_digest(self.mac(e), e.hash):
                problem(f"record {e.id}: content does not match its MAC (edited)")
            if e.id in wanted:
                seen[e.id] = e.hash
            expected_id, prev = e.id + 1, e.hash
            rep.last_id, rep.last_hash = e.id, e.hash
        with Session(self.engine) as s:
            head = s.get(AuditHead, 1)
        if head is None:
            problem("audit_head row is missing")
        elif (head.last_id, head.last_hash) != (rep.last_id, rep.last_hash):
            problem(f"head names record {head.last_id} but the log ends at record "
                    f"{rep.last_id} (records at the end deleted or added)")
        self._verify_anchor(rep, problem)
        for by, h in heads:
            self._verify_witnessed(rep, problem, by, h, seen.get(h.id), public_key)
        return rep

    def _verify_anchor(self, rep: VerifyReport, problem: Callable[[str], None]) -> None:
        if self.anchor_dir is None:
            return
        anchor = read_anchor(self.anchor_dir)
        if anchor is None:
            if rep.records:
                rep.notes.append(f"no anchor file in {self.anchor_dir} (the log was written "
                                 "from another VIGIL_HOME, or the file was deleted)")
            return
        why = check_anchor(anchor, self._key)
        if why is not None:
            problem(why)
        if anchor.id > rep.last_id:
            problem(f"anchor file names record {anchor.id} but the log ends at record "
                    f"{rep.last_id} (records at the end deleted)")
        else:
            found = self.records(after_id=anchor.id - 1, limit=1)
            if not found or found[0].id != anchor.id or found[0].hash != anchor.hash:
                problem(f"record {anchor.id} differs from the anchor file")

    @staticmethod
    def _verify_witnessed(rep: VerifyReport, problem: Callable[[str], None], by: str,
                          h: SignedHead, mac: str | None,
                          public_key: Ed25519PublicKey | None) -> None:
        where = f"the head {by} witnessed at {h.at} (record {h.id})"
        if public_key is None or not check_head(h, public_key):
            problem(f"{where} does not verify against this node's key (a forged or altered "
                    "copy)")
            return
        rep.witnessed[by] = rep.witnessed.get(by, 0) + 1
        if h.id == 0:
            return
        if h.id > rep.last_id:
            problem(f"{where}: the log now ends at record {rep.last_id} (records cut off "
                    "the end, even if the head row and the anchor were rewound with them)")
        elif mac is None or not hmac.compare_digest(mac, h.hash):
            problem(f"{where}: record {h.id} is not the record {by} saw (the log was "
                    "rewritten from there)")
