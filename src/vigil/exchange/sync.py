"""Pulling feeds from a peer into local mirror banks: verified, incremental, resumable.

For each feed the peer offers this node: check the feed is one we may accept (its origin's
key is trusted; a feed passed on by a node that is not its origin must carry the origin's
permission to pass it on), then pull pages after the mirror's checkpoint. Each page is
verified against the chain and the origin's signatures, and what verified is applied to
the mirror bank *in the same transaction* as the new checkpoint. So:

* a crash or kill anywhere loses at most the page in flight, and the next sync resumes
  from the checkpoint — no duplicates, nothing lost;
* re-running a finished sync changes nothing (an empty page);
* a tampered record stops that feed with an error naming the record; everything before
  the last verified checkpoint is kept, and the next sync of a clean feed goes on.

Throughput (a first sync of a million records, bench/federation.py, bench/mirror_apply.py):

* pages are fetched, parsed, verified and converted in a second thread, one page ahead of
  the writes (the database drivers release the GIL while they work), through a queue of
  at most ``AHEAD`` pages, so memory stays flat;
* several pages go into one write transaction (about ``TXN_RECORDS`` records), with the
  checkpoint of the last of them: each commit rewrites the index pages the inserts dirtied,
  so fewer, larger commits cost far less as the mirror grows. A crash loses at most that
  transaction, and the next sync resumes from the checkpoint it left;
* adds are written optimistically (``Banks.apply(optimistic=True)``): a new mirror has
  none of the values yet, so most batches skip the per-value existence lookups.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from vigil.audit import AuditLog
from vigil.banks import BankError, Banks
from vigil.entry import EntryRecord, Labels
from vigil.exchange.opinions import store_remote
from vigil.exchange.peers import PeerError, peer_token, trusted_key
from vigil.exchange.records import (
    Descriptor,
    FeedError,
    WireRecord,
    genesis,
    public_key,
    verify_page,
)
from vigil.node import epoch_file, identity
from vigil.store.bulk import bulk_insert
from vigil.store.models import Bank, utcnow
from vigil.store.models_exchange import Feed, FeedRecord, Peer

log = logging.getLogger("vigil.exchange")
_NO_EXTRA: dict[str, Any] = {}
DEFAULT_PAGE = 10_000
#: records per write transaction of a sync (whole pages; at least one page), unless
#: ``VIGIL_SYNC_TXN_RECORDS`` says otherwise; and the longest one transaction stays open:
#: a slow link still moves the checkpoint (a kill loses at most this much work), and other
#: writers of the node, which queue behind a sync's transaction (SQLite's write lock,
#: PostgreSQL's change-log lock), wait well within SQLite's 30 s busy timeout
TXN_RECORDS = 250_000
TXN_SECONDS = 15.0
#: pages verified ahead of the writes (memory: this many pages, plus the one being written)
AHEAD = 2


@dataclass(slots=True)
class FeedSync:
    """What one feed's sync did."""

    feed: str
    mirror: str
    before: int = 0
    after: int = 0
    head: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    error: str | None = None

    @property
    def records(self) -> int:
        return self.after - self.before


@dataclass(slots=True)
class PeerSync:
    peer: str
    feeds: list[FeedSync] = field(default_factory=list)
    error: str | None = None
    #: mirrors this peer no longer offers (unshared at the origin): kept, no longer synced
    dropped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(f.error is None for f in self.feeds)


def mirror_name(d: Descriptor) -> str:
    """The local name of a mirror of ``d``: ``ORIGIN.bank``."""
    return f"{d.origin}.{d.bank}"[:100]


def _labels(body: dict[str, Any]) -> Labels:
    lab = body.get("labels") or {}
    cat = lab.get("category")
    return Labels(category=(cat[0], cat[1]) if cat else None, series=lab.get("series"),
                  victim_status=lab.get("victim_status", "unknown"),
                  tags=tuple(lab.get("tags") or ()), note=lab.get("note"))


def _label_key(lab: dict[str, Any] | None) -> bytes:
    return orjson.dumps(lab, option=orjson.OPT_SORT_KEYS) if lab else b""


def to_entry_records(d: Descriptor, records: list[tuple[dict[str, Any], WireRecord]],
                     ) -> list[EntryRecord]:
    """Feed records as bank records; a record that is not a valid entry names its seq.

    Records with the same labels share one ``Labels`` object: it is validated once, and
    ``Banks.apply`` derives (and serialises) its columns once per object, not per record.
    """
    out = []
    prefix = f"{d}#"
    labels: dict[bytes, Labels] = {}
    for body, _ in records:
        try:
            if body["op"] == "remove":
                out.append(EntryRecord(body["type"], body["value"], op="remove"))
            else:
                # provenance: the origin's sequence number is the entry's id in its source
                # (a shared empty ``extra``: nothing to serialise per entry)
                extra = {"vpdq": body["frames"]} if body.get("frames") else _NO_EXTRA
                # the label set's key: its JSON text (sorted keys; one C call per record)
                key = _label_key(body.get("labels"))
                lab = labels.get(key)
                if lab is None:
                    lab = labels[key] = _labels(body)
                out.append(EntryRecord(body["type"], body["value"], lab,
                                       body.get("quality"), source_id=f"{prefix}{body['seq']}",
                                       extra=extra))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FeedError(f"feed {d} record seq {body.get('seq')}: not a valid entry "
                            f"({exc})") from None
    return out


class _Client:
    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, **params: Any) -> httpx.Response:
        try:
            return self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PeerError(f"{self.http.base_url}{path}: {type(exc).__name__}: {exc}") from None

    def page(self, bank: str, after: int, limit: int) -> httpx.Response:
        return self.get(f"/v1/feeds/{quote(bank, safe='')}", after=after, limit=limit)

    def close(self) -> None:
        self.http.close()


def _problem(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail") or r.text[:200])
    except ValueError:
        return r.text[:200]


@dataclass(slots=True)
class _Ready:
    """A page the fetch thread verified and converted: what to write, and where it ends."""

    first: int  #: seq of its first record
    last_seq: int  #: the checkpoint after it (last verified record)
    last_hash: str
    head: int
    records: list[EntryRecord]
    #: its records verbatim (``feed_records`` rows), kept only where they may be passed on
    kept: list[dict[str, Any]]
    #: why (the rest of) the page was refused; what verified before it is still written
    error: str | None
    #: no page after this one (the feed's head reached, or an empty page)
    done: bool


class _Pages:
    """Pulls a feed's pages in a thread: fetch, parse, verify and convert run there, at most
    ``AHEAD`` pages ahead of the writes, while the main thread writes (drivers release the
    GIL while the database works). ``get`` returns the next ``_Ready`` page, or the
    exception that stopped the thread (after which nothing more comes)."""

    def __init__(self, client: _Client, remote_bank: str, d: Descriptor, key: Any,
                 feed: Feed, page_size: int, peer: str) -> None:
        self.client, self.remote_bank, self.d, self.key = client, remote_bank, d, key
        self.feed_id, self.reshare, self.page_size, self.peer = (feed.id, d.reshare,
                                                                 page_size, peer)
        self.q: queue.Queue[_Ready | BaseException] = queue.Queue(AHEAD)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(feed.last_seq, feed.last_hash),
                                       name="vigil-feed-fetch", daemon=True)
        self.thread.start()

    def get(self) -> _Ready | BaseException:
        return self.q.get()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def _put(self, item: _Ready | BaseException) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, after: int, prev: str) -> None:
        try:
            while not self.stop.is_set():
                ready = self._page(after, prev)
                if not self._put(ready) or ready.done or ready.error is not None:
                    return
                after, prev = ready.last_seq, ready.last_hash
        except BaseException as exc:  # handed to the writer, which raises it
            self._put(exc)

    def _page(self, after: int, prev: str) -> _Ready:
        d = self.d
        r = self.client.page(self.remote_bank, after, self.page_size)
        if r.status_code == 403:
            raise FeedError(f"feed {d}: {self.peer} no longer shares it with us (403); "
                            "what was pulled before stays")
        if r.status_code != 200:
            raise FeedError(f"feed {d}: {self.peer} answered {r.status_code}: {_problem(r)}")
        # orjson: the records are hashed as the text received, so the parser does not
        # matter to verification; it is several times faster than json on a 1M sync
        data = orjson.loads(r.content)
        if Descriptor.parse(data["feed"]) != d:
            raise FeedError(f"feed {d}: the page is of another feed ({data['feed']})")
        head = int(data["head"])
        wire = [WireRecord(*x) for x in data["records"]]
        if not wire:
            return _Ready(after + 1, after, prev, head, [], [], None, True)
        vp = verify_page(d, self.key, after, prev, wire)
        error = vp.error
        try:
            records = to_entry_records(d, vp.records)
        except FeedError as exc:  # signed, but not an entry: refuse the whole page
            return _Ready(after + 1, after, prev, head, [], [], str(exc), True)
        kept = [{"feed_id": self.feed_id, "seq": b["seq"], "body": w.body, "hash": w.hash,
                 "sig": w.sig} for b, w in vp.records] if self.reshare else []
        return _Ready(after + 1, vp.last_seq, vp.last_hash, head, records, kept, error,
                      error is not None or vp.last_seq >= head)


class PeerSyncer:
    """Syncs the feeds of one peer into this node's mirror banks."""

    def __init__(self, engine: Engine, home: Path, peer: str, *, page_size: int = DEFAULT_PAGE,
                 timeout: float = 120, audit: AuditLog | None = None,
                 progress: Callable[[FeedSync], None] | None = None,
                 txn_records: int | None = None) -> None:
        self.engine, self.home, self.peer = engine, home, peer
        self.txn_records = txn_records or int(os.environ.get("VIGIL_SYNC_TXN_RECORDS")
                                              or TXN_RECORDS)
        self.page_size, self.timeout, self.audit, self.progress = (page_size, timeout, audit,
                                                                   progress)
        ident = identity(engine)
        if ident is None:
            raise PeerError("this node has no identity yet: run `vigil init` first")
        self.local = ident.agency
        with Session(engine) as s:
            p = s.get(Peer, peer)
            if p is None:
                raise PeerError(f"no peer named {peer!r} (vigil peer list)")
            self.url, self.peer_agency = p.url, p.agency

    def run(self) -> PeerSync:
        out = PeerSync(self.peer)
        client = _Client(self.url, peer_token(self.home, self.peer), self.timeout)
        try:
            r = client.get("/v1/feeds")
            if r.status_code != 200:
                raise PeerError(f"{self.url}/v1/feeds answered {r.status_code}: {_problem(r)}")
            offered = [(item["bank"], Descriptor.parse(item["descriptor"]))
                       for item in r.json()["feeds"]]
            for bank, d in offered:
                out.feeds.append(self._sync_feed(client, bank, d))
            out.dropped = self._retire({d.text() for _, d in offered})
            self._pull_opinions(client)
        except (PeerError, FeedError, KeyError, ValueError) as exc:
            out.error = str(exc) if not isinstance(exc, KeyError) else f"malformed answer: {exc}"
        finally:
            client.close()
        with Session(self.engine) as s, s.begin():
            s.execute(update(Peer).where(Peer.name == self.peer).values(
                synced_at=utcnow(), error=out.error or next(
                    (f.error for f in out.feeds if f.error), None)))
        if self.audit is not None:
            self.audit.append("peer.sync", outcome="ok" if out.ok else "failed",
                              agency=self.local, actor=f"peer-sync/{self.peer}",
                              target=self.peer,
                              detail={"feeds": len(out.feeds),
                                      "records": sum(f.records for f in out.feeds),
                                      "error": (out.error or next(
                                          (f.error for f in out.feeds if f.error), None))})
        return out

    def _retire(self, offered: set[str]) -> list[str]:
        """Mark mirrors of this peer that it no longer offers: what was pulled stays (it
        cannot be taken back over the network), but it is no longer kept current."""
        gone = []
        with Session(self.engine) as s, s.begin():
            for f in s.scalars(select(Feed).where(Feed.peer == self.peer,
                                                  Feed.mirror.is_(True),
                                                  Feed.active.is_(True))):
                if f.descriptor not in offered:
                    d = Descriptor.parse(f.descriptor)
                    f.active = False
                    f.error = (f"{self.peer} no longer shares {d} with us; what was pulled "
                               "before stays, no longer synced")
                    gone.append(str(d))
        return gone

    def _pull_opinions(self, client: _Client) -> None:
        """Opinions the peer recorded about this node's banks (disputes come back here)."""
        with Session(self.engine) as s:
            after = s.scalar(select(Peer.opinions_after).where(Peer.name == self.peer)) or 0
        while True:
            r = client.get("/v1/opinions", after=after)
            if r.status_code != 200:
                raise PeerError(f"{self.url}/v1/opinions answered {r.status_code}: "
                                f"{_problem(r)}")
            items = r.json()["opinions"]
            if not items:
                return
            store_remote(self.engine, self.local, self.peer_agency, items)
            after = max(int(i["id"]) for i in items)
            with Session(self.engine) as s, s.begin():
                s.execute(update(Peer).where(Peer.name == self.peer)
                          .values(opinions_after=after))

    # ---- one feed ------------------------------------------------------------------------

    def _mirror(self, d: Descriptor) -> tuple[Feed | None, str]:
        """The mirror feed row for ``d`` (creating bank and row if new), or None + why not."""
        name = mirror_name(d)
        if d.origin == self.local:
            return None, f"feed {d} is this node's own bank coming back; ignored"
        if d.origin != self.peer_agency and not d.reshare:
            return None, f"feed {d} reached us through {self.peer_agency} without its origin's " \
                         "permission to pass it on; refused"
        with Session(self.engine) as s, s.begin():
            bank = s.scalar(select(Bank).where(Bank.name == name))
            feed = None if bank is None else s.scalar(
                select(Feed).where(Feed.bank_id == bank.id, Feed.mirror.is_(True)))
            if bank is not None and feed is None:
                return None, f"a local bank named {name!r} exists and is not a mirror of {d}"
            if feed is not None and feed.peer not in (None, self.peer) and feed.active:
                return None, f"feed {d} is already mirrored from peer {feed.peer}"
            if bank is None:
                bank = Bank(name=name, agency=self.local, created_at=utcnow(),
                            updated_at=utcnow(), last_seq=0,
                            description=f"mirror of {d} (read-only), pulled from peer "
                                        f"{self.peer}")
                s.add(bank)
                s.flush()
            if feed is None:
                feed = Feed(bank_id=bank.id, mirror=True, descriptor=d.text(), origin=d.origin,
                            last_seq=0, last_hash=genesis(d), peer=self.peer, active=True)
                s.add(feed)
            elif feed.descriptor != d.text():
                # the origin changed what it shares (other labels): start the chain again;
                # re-applying every record brings the mirror's labels to the new rule
                log.warning("feed %s changed its descriptor; resyncing from the start", d)
                s.execute(delete(FeedRecord).where(FeedRecord.feed_id == feed.id))
                feed.descriptor, feed.last_seq, feed.last_hash = d.text(), 0, genesis(d)
            feed.peer, feed.active = self.peer, True
            s.flush()
            s.expunge(feed)
            created = bank.last_seq == 0 and feed.last_seq == 0
        if created:  # running workers of this host see the new mirror bank at once
            epoch_file(self.home).bump("banks")
        return feed, ""

    def _sync_feed(self, client: _Client, remote_bank: str, d: Descriptor) -> FeedSync:
        feed, why = self._mirror(d)
        fs = FeedSync(str(d), mirror_name(d))
        if feed is None:
            fs.error = why
            return fs
        fs.before = fs.after = feed.last_seq
        key_hex = trusted_key(self.engine, d.origin)
        if key_hex is None:
            fs.error = (f"feed {d}: no trusted key for its origin {d.origin}; run "
                        f"`vigil peer trust {d.origin} --key …` with the key {d.origin} gave")
            self._set_error(feed.id, fs.error)
            return fs
        pages = _Pages(client, remote_bank, d, public_key(key_hex), feed,
                       self.page_size, self.peer)
        try:
            while self._write(feed, d, pages, fs):
                pass
            self._set_error(feed.id, None)
        except (FeedError, PeerError, BankError, ValueError, KeyError, TypeError) as exc:
            fs.error = str(exc) if isinstance(exc, (FeedError, PeerError, BankError)) else \
                f"feed {d}: malformed page ({type(exc).__name__}: {exc})"
            self._set_error(feed.id, fs.error)
            log.warning("%s", fs.error)
        finally:
            pages.close()
        return fs

    def _write(self, feed: Feed, d: Descriptor, pages: _Pages, fs: FeedSync) -> bool:
        """Write the next verified pages (about ``TXN_RECORDS`` records) and their
        checkpoint in one transaction; True if the feed has more to pull.

        A page refused by verification (or a failed request) ends the transaction early:
        what verified before it is committed with its checkpoint, then the error is raised.
        """
        first = pages.get()
        if isinstance(first, BaseException):
            raise first
        fs.head = first.head
        if not first.records:
            if first.error is not None:
                raise FeedError(first.error)
            return False
        state: dict[str, Any] = {"last": first, "rows": list(first.kept), "stop": None,
                                 "more": not first.done}

        started = time.monotonic()

        def records() -> Iterator[EntryRecord]:
            item: _Ready | BaseException = first
            total = 0
            while True:
                assert isinstance(item, _Ready)
                yield from item.records
                total += len(item.records)
                if item.error is not None:
                    state["stop"], state["more"] = FeedError(item.error), False
                    return
                if item.done or total >= self.txn_records \
                        or time.monotonic() - started > TXN_SECONDS:
                    return
                item = pages.get()
                if isinstance(item, BaseException):
                    state["stop"], state["more"] = item, False
                    return
                fs.head = item.head
                if item.records:
                    state["last"] = item
                    state["rows"] += item.kept
                if item.error is None and item.done:
                    state["more"] = False
                if not item.records:
                    if item.error is not None:
                        state["stop"] = FeedError(item.error)
                    state["more"] = False
                    return

        def checkpoint(s: Session) -> None:
            last: _Ready = state["last"]
            moved = s.execute(update(Feed).where(Feed.id == feed.id,
                                                 Feed.last_seq == first.first - 1)
                              .values(last_seq=last.last_seq, last_hash=last.last_hash,
                                      synced_at=utcnow(), error=None))
            if moved.rowcount != 1:  # another sync of the same feed got here first
                raise FeedError(f"feed {d}: checkpoint moved under us (concurrent sync); "
                                "nothing applied from this page")
            if state["rows"]:
                bulk_insert(s.connection(), FeedRecord.__table__, state["rows"])

        res = Banks(self.engine, user=f"feed:{d.origin}").apply(
            mirror_name(d), records(), source=f"feed {d} via {self.peer}",
            origin_agency=d.origin, mirror=True, before_commit=checkpoint, optimistic=True)
        fs.added += res.added
        fs.updated += res.updated
        fs.removed += res.removed
        fs.after = state["last"].last_seq
        if self.progress:
            self.progress(fs)
        if state["stop"] is not None:
            raise state["stop"]
        return bool(state["more"])

    def _set_error(self, feed_id: int, error: str | None) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(update(Feed).where(Feed.id == feed_id).values(error=error,
                                                                     synced_at=utcnow()))


def sync_peer(engine: Engine, home: Path, peer: str, **kw: Any) -> PeerSync:
    """Sync every feed ``peer`` offers this node (see ``PeerSyncer``)."""
    return PeerSyncer(engine, home, peer, **kw).run()


def sync_all(engine: Engine, home: Path, **kw: Any) -> list[PeerSync]:
    """Sync every peer, one after the other; a failing peer does not stop the others."""
    with Session(engine) as s:
        names = list(s.scalars(select(Peer.name).order_by(Peer.name)))
    return [sync_peer(engine, home, n, **kw) for n in names]


def summary(ps: PeerSync) -> dict[str, Any]:
    """A sync result as plain data (CLI ``--json``, audit, API)."""
    return {"peer": ps.peer, "ok": ps.ok, "error": ps.error, "no_longer_shared": ps.dropped,
            "feeds": [{"feed": f.feed, "mirror": f.mirror, "from": f.before, "to": f.after,
                       "head": f.head, "added": f.added, "updated": f.updated,
                       "removed": f.removed, "error": f.error} for f in ps.feeds]}


__all__ = ["FeedSync", "PeerSync", "PeerSyncer", "mirror_name", "summary", "sync_all",
           "sync_peer"]
