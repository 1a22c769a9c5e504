"""Pulling feeds from a peer into local mirror banks: verified, incremental, resumable.

For each feed the peer offers this node: check the feed is one we may accept (its origin's
key is trusted; a feed passed on by a node that is not its origin must carry the origin's
permission to pass it on), then pull pages after the mirror's checkpoint. Each page is
verified against the chain and the origin's signatures, and what verified is applied to
the mirror bank *in the same transaction* as the new checkpoint, at least every
``COMMIT_SECONDS``. So:

* a crash or kill anywhere loses at most the pages of the open transaction (at most
  ``COMMIT_SECONDS`` of work), and the next sync resumes from the checkpoint — no
  duplicates, nothing lost;
* re-running a finished sync changes nothing (an empty page);
* a tampered record stops that feed with an error naming the record; everything before
  the last verified checkpoint is kept, and the next sync of a clean feed goes on.

Throughput (a first sync of a million records, bench/federation.py, bench/mirror_apply.py):

* pages are fetched, parsed, verified and converted in a second thread, one page ahead of
  the writes (the database drivers release the GIL while they work), through a queue of
  at most ``AHEAD`` pages, so memory stays flat;
* several pages go into one write transaction (at most ``TXN_RECORDS`` records, open at
  most ``COMMIT_SECONDS``), with the checkpoint of the last of them. Why not one page per
  transaction: on SQLite each commit writes (and checkpoints) every index page the inserts
  dirtied, so the cost of a commit grows with the mirror. Why not longer: a kill loses the
  open transaction, and the node's other writers (on SQLite, every audited request) queue
  behind it. Measured on a 1M-record first sync, SQLite: commits cost 2.4 s in all with
  transactions of up to 15 s, 6.5 s with 2 s ones; PostgreSQL: no difference;
* adds are written optimistically (``Banks.apply(optimistic=True)``): a new mirror has
  none of the values yet, so most batches skip the per-value existence lookups.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from sqlalchemy import Engine

from vigil.audit import AuditLog
from vigil.banks import BankError, Banks
from vigil.banks.entry import EntryRecord
from vigil.exchange import repo
from vigil.exchange.opinions import parse_opinions, store_remote
from vigil.exchange.peers import PeerError, peer_token, trusted_key
from vigil.exchange.records import (
    Descriptor,
    FeedError,
    Listed,
    genesis,
    parse_feed_list,
    public_key,
)
from vigil.exchange.verify import check_page
from vigil.exchange.witnessing import exchange_heads
from vigil.formats.limits import JsonError, JsonLimits, Limits, load_json, setting
from vigil.node import identity

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger("vigil.exchange")
DEFAULT_PAGE = 10_000
#: records per write transaction of a sync (whole pages; at least one page), unless
#: ``VIGIL_SYNC_TXN_RECORDS`` says otherwise
TXN_RECORDS = 250_000
#: how long one write transaction of a sync may take, unless ``VIGIL_SYNC_COMMIT_SECONDS``
#: says otherwise: verified pages are committed (with their checkpoint) about this often,
#: so a kill loses at most this much work, and the node's other writers, which queue
#: behind a sync's transaction (SQLite's write lock, PostgreSQL's change-log lock), wait
#: about this long at most
COMMIT_SECONDS = 2.0
#: pages verified ahead of the writes (memory: this many pages, plus the one being written)
AHEAD = 2
#: bytes of a peer's answer read (and inflated) at a time
CHUNK = 1 << 16


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
    #: the id of the peer's audit head kept as a witness (None: it gave none)
    witnessed: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(f.error is None for f in self.feeds)


def mirror_name(d: Descriptor) -> str:
    """The local name of a mirror of ``d``: ``ORIGIN.bank``."""
    return f"{d.origin}.{d.bank}"[:100]


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    content: bytes | bytearray


class PageTooLarge(PeerError):
    """An answer of the peer went past ``max_page_bytes`` (decompressed)."""


class _Client:
    """HTTP to one peer. Answers are read as a stream and refused past the limit
    (``VIGIL_MAX_FEED_PAGE_BYTES``, counted after decompression: a small gzip body can
    inflate to gigabytes), before anything parses them."""

    def __init__(self, url: str, token: str, timeout: float,
                 limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_env()
        self.http = httpx.Client(base_url=url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, **params: Any) -> _Answer:
        cap = self.limits.max_page_bytes
        try:
            with self.http.stream("GET", path, params=params,
                                  headers={"Accept-Encoding": "gzip"}) as r:
                encoding = r.headers.get("content-encoding", "").strip().lower()
                if encoding not in ("", "identity", "gzip"):
                    raise PeerError(f"{self.http.base_url}{path}: unsupported "
                                    f"Content-Encoding {encoding[:40]!r}")
                # decompressed here, at most up to the cap (httpx would inflate a whole
                # received chunk at once: 64 KiB of gzip can hold 64 MB)
                inflate = zlib.decompressobj(31) if encoding == "gzip" else None
                buf = bytearray()
                for chunk in r.iter_raw(CHUNK):
                    data = chunk
                    while data:
                        if inflate is None:
                            buf += data
                            data = b""
                        else:
                            buf += inflate.decompress(data, cap + 1 - len(buf))
                            data = inflate.unconsumed_tail
                        if len(buf) > cap:
                            raise PageTooLarge(
                                f"{self.http.base_url}{path}: the answer is larger than "
                                f"{cap:,} bytes ({setting('max_page_bytes')})")
                return _Answer(r.status_code, buf)
        except (httpx.HTTPError, zlib.error) as exc:
            raise PeerError(f"{self.http.base_url}{path}: {type(exc).__name__}: {exc}") from None

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise PeerError(f"{self.http.base_url}{path}: {type(exc).__name__}: {exc}") from None

    def page(self, bank: str, after: int, limit: int) -> _Answer:
        return self.get(f"/v1/feeds/{quote(bank, safe='')}", after=after, limit=limit)

    def close(self) -> None:
        self.http.close()


def _problem(r: _Answer) -> str:
    """What a peer's error answer says (its problem's detail), briefly."""
    try:
        doc = load_json(bytes(r.content[:65536]),
                        JsonLimits(depth=4, values=1000, items=100, string=4096))
        detail = doc.get("detail") if isinstance(doc, dict) else None
        if isinstance(detail, str):
            return detail[:200]
    except JsonError:
        pass
    return bytes(r.content[:200]).decode("utf-8", "replace")


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
                 feed: repo.MirrorFeed, page_size: int, peer: str) -> None:
        self.client, self.remote_bank, self.d, self.key = client, remote_bank, d, key
        self.feed_id, self.reshare, self.page_size, self.peer = (feed.id, d.reshare,
                                                                 page_size, peer)
        self.q: queue.Queue[_Ready | BaseException] = queue.Queue(AHEAD)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(feed.last_seq, feed.last_hash),
                                       name="vigil-feed-fetch", daemon=True)
        self.thread.start()

    def get(self, timeout: float | None = None) -> _Ready | BaseException | None:
        """The next page (or what stopped the thread); None if none came within
        ``timeout`` seconds (it stays queued for the next call)."""
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

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
        while True:
            try:
                r = self.client.page(self.remote_bank, after, self.page_size)
                break
            except PageTooLarge:
                if self.page_size == 1:
                    raise
                # records with long frame lists (videos) make big pages: ask for fewer
                self.page_size = max(1, self.page_size // 2)
                log.info("feed %s: page too large; asking for %d records a page",
                         d, self.page_size)
        if r.status_code == 403:
            raise FeedError(f"feed {d}: {self.peer} no longer shares it with us (403); "
                            "what was pulled before stays")
        if r.status_code != 200:
            raise FeedError(f"feed {d}: {self.peer} answered {r.status_code}: {_problem(r)}")
        # checked within limits, then parsed (orjson); the records are hashed as the text
        # received, so the parser does not matter to verification
        cp = check_page(d, self.key, after, prev, r.content, self.client.limits)
        head, vp, error = cp.head, cp.verified, cp.error
        if not vp.records:
            return _Ready(after + 1, after, prev, head, [], [], error, True)
        records = cp.entries
        kept = [{"feed_id": self.feed_id, "seq": b["seq"], "body": w.body, "hash": w.hash,
                 "sig": w.sig} for b, w in vp.records] if self.reshare else []
        return _Ready(after + 1, vp.last_seq, vp.last_hash, head, records, kept, error,
                      error is not None or vp.last_seq >= head)


class PeerSyncer:
    """Syncs the feeds of one peer into this node's mirror banks."""

    def __init__(self, engine: Engine, home: Path, peer: str, *, page_size: int = DEFAULT_PAGE,
                 timeout: float = 120, audit: AuditLog | None = None,
                 progress: Callable[[FeedSync], None] | None = None,
                 txn_records: int | None = None,
                 banks_changed: Callable[[], None] | None = None,
                 actor: str | None = None) -> None:
        self.engine, self.home, self.peer = engine, home, peer
        #: who the audit record names: the operator of a `vigil peer sync`, or the node's
        #: own periodic sync
        self.actor = actor or f"peer-sync/{peer}"
        #: told when a sync creates a mirror bank (a server's workers cache the bank list)
        self.banks_changed = banks_changed
        self.txn_records = txn_records or int(os.environ.get("VIGIL_SYNC_TXN_RECORDS")
                                              or TXN_RECORDS)
        self.commit_seconds = float(os.environ.get("VIGIL_SYNC_COMMIT_SECONDS")
                                    or COMMIT_SECONDS)
        self.page_size, self.timeout, self.audit, self.progress = (page_size, timeout, audit,
                                                                   progress)
        ident = identity(engine)
        if ident is None:
            raise PeerError("this node has no identity yet: run `vigil init` first")
        self.local = ident.agency
        p = repo.peer_info(engine, peer)
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
            offered = parse_feed_list(r.content, client.limits)
            for listed in offered:
                out.feeds.append(self._sync_feed(client, listed))
            out.dropped = self._retire({f.descriptor.text() for f in offered})
            self._pull_opinions(client)
        except (PeerError, FeedError, KeyError, ValueError) as exc:
            out.error = str(exc) if not isinstance(exc, KeyError) else f"malformed answer: {exc}"
        try:
            if out.error is None:  # a peer that failed above is not asked again
                out.witnessed, problem = exchange_heads(client, self.engine, self.home,
                                                        self.local, self.peer,
                                                        self.peer_agency)
                out.error = problem
        except (PeerError, FeedError, KeyError, ValueError) as exc:
            out.error = f"audit heads: {exc}"
        finally:
            client.close()
        # what the operator sees of the peer: its own error and the first feed's, both
        errors = [e for e in (out.error, next((f.error for f in out.feeds if f.error), None))
                  if e]
        error = "; ".join(errors) or None
        repo.set_peer_result(self.engine, self.peer, error)
        if self.audit is not None:
            self.audit.append("peer.sync", outcome="ok" if out.ok else "failed",
                              agency=self.local, actor=self.actor, target=self.peer,
                              detail={"feeds": len(out.feeds),
                                      "records": sum(f.records for f in out.feeds),
                                      "witnessed": out.witnessed, "error": error})
        return out

    def _retire(self, offered: set[str]) -> list[str]:
        """Mark mirrors of this peer that it no longer offers: what was pulled stays (it
        cannot be taken back over the network), but it is no longer kept current."""
        return repo.retire_mirrors(
            self.engine, self.peer, offered,
            lambda d: f"{self.peer} no longer shares {d} with us; what was pulled before "
                      "stays, no longer synced")

    def _pull_opinions(self, client: _Client) -> None:
        """Opinions the peer recorded about this node's banks (disputes come back here)."""
        after = repo.opinions_after(self.engine, self.peer)
        while True:
            r = client.get("/v1/opinions", after=after)
            if r.status_code != 200:
                raise PeerError(f"{self.url}/v1/opinions answered {r.status_code}: "
                                f"{_problem(r)}")
            items = parse_opinions(r.content, client.limits)
            if not items:
                return
            store_remote(self.engine, self.local, self.peer_agency, items)
            after = max(i.id for i in items)
            repo.set_opinions_after(self.engine, self.peer, after)

    # ---- one feed ------------------------------------------------------------------------

    def _mirror(self, d: Descriptor) -> tuple[repo.MirrorFeed | None, str]:
        """The mirror feed of ``d`` (making its bank if new), or None and why not."""
        name = mirror_name(d)
        if d.origin == self.local:
            return None, f"feed {d} is this node's own bank coming back; ignored"
        if d.origin != self.peer_agency and not d.reshare:
            return None, f"feed {d} reached us through {self.peer_agency} without its origin's " \
                         "permission to pass it on; refused"
        feed = repo.open_mirror(self.engine, name, d, self.peer)
        if feed is None:
            # BankError: made meanwhile by another sync; open_mirror decides below
            with contextlib.suppress(BankError):
                Banks(self.engine, user=f"feed:{d.origin}").create_mirror(
                    name, self.local, f"mirror of {d} (read-only), pulled from peer {self.peer}",
                    descriptor=d.text(), origin=d.origin, first_hash=genesis(d),
                    peer=self.peer)
            feed = repo.open_mirror(self.engine, name, d, self.peer)
        if feed is None:
            return None, f"feed {d}: its mirror bank {name!r} could not be made"
        if isinstance(feed, str):
            return None, feed
        if feed.restarted:
            log.warning("feed %s changed its descriptor; resyncing from the start", d)
        if feed.fresh and self.banks_changed is not None:
            self.banks_changed()
        return feed, ""

    def _sync_feed(self, client: _Client, listed: Listed) -> FeedSync:
        remote_bank, d = listed.bank, listed.descriptor
        feed, why = self._mirror(d)
        fs = FeedSync(str(d), mirror_name(d))
        if feed is None:
            fs.error = why
            return fs
        if listed.crop_ladder:
            # before any record is applied: the indexes take a mirror entry's derived
            # codes when they replay its change, and only from a bank with the flag
            Banks(self.engine, user=f"feed:{d.origin}").set_crop_ladder(mirror_name(d),
                                                                       mirror=True)
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
            self._retracted(fs)
        return fs

    def _retracted(self, fs: FeedSync) -> None:
        """Removals pulled into a mirror (retractions, withdrawn self-submissions) are
        recorded in this node's audit log: its own record that they stopped matching."""
        if fs.removed and self.audit is not None:
            self.audit.append("feed.retract", agency=self.local, actor=self.actor,
                              target=fs.mirror, detail={"feed": fs.feed, "removed": fs.removed})

    def _write(self, feed: repo.MirrorFeed, d: Descriptor, pages: _Pages, fs: FeedSync) -> bool:
        """Write the next verified pages (at most ``TXN_RECORDS`` records, for at most
        ``COMMIT_SECONDS``) and their checkpoint in one transaction; True if the feed has
        more to pull.

        A page refused by verification (or a failed request) ends the transaction early:
        what verified before it is committed with its checkpoint, then the error is raised.
        """
        first = pages.get()
        assert first is not None  # no timeout: waits for the page or the thread's end
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
            item: _Ready | BaseException | None = first
            total = 0
            while True:
                assert isinstance(item, _Ready)
                page_started = time.monotonic()
                yield from item.records
                now = time.monotonic()
                total += len(item.records)
                if item.error is not None:
                    state["stop"], state["more"] = FeedError(item.error), False
                    return
                # Take another page only if it should be written before the transaction
                # is COMMIT_SECONDS old (judged by the page just written), and wait for
                # it no longer than that: the commit comes on time even on a slow link.
                left = started + self.commit_seconds - now - (now - page_started)
                if item.done or total >= self.txn_records or left <= 0:
                    return
                item = pages.get(timeout=left)
                if item is None:
                    return  # the page stays queued: the next transaction starts with it
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
            if not repo.advance_checkpoint(s, feed.id, first.first - 1, last.last_seq,
                                           last.last_hash, state["rows"]):
                # another sync of the same feed got here first
                raise FeedError(f"feed {d}: checkpoint moved under us (concurrent sync); "
                                "nothing applied from this page")

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
        repo.set_feed_error(self.engine, feed_id, error)


def sync_peer(engine: Engine, home: Path, peer: str, **kw: Any) -> PeerSync:
    """Sync every feed ``peer`` offers this node (see ``PeerSyncer``)."""
    return PeerSyncer(engine, home, peer, **kw).run()


def sync_all(engine: Engine, home: Path, **kw: Any) -> list[PeerSync]:
    """Sync every peer, one after the other; a failing peer does not stop the others."""
    return [sync_peer(engine, home, n, **kw) for n in repo.peer_names(engine)]


def summary(ps: PeerSync) -> dict[str, Any]:
    """A sync result as plain data (CLI ``--json``, audit, API)."""
    return {"peer": ps.peer, "ok": ps.ok, "error": ps.error, "no_longer_shared": ps.dropped,
            "witnessed_head": ps.witnessed,
            "feeds": [{"feed": f.feed, "mirror": f.mirror, "from": f.before, "to": f.after,
                       "head": f.head, "added": f.added, "updated": f.updated,
                       "removed": f.removed, "error": f.error} for f in ps.feeds]}


#: HTTP to one peer within the feed limits, for the workflows that pull from peers too
PeerClient = _Client
problem_of = _problem

__all__ = ["FeedSync", "PeerClient", "PeerSync", "PeerSyncer", "mirror_name", "problem_of",
           "summary", "sync_all", "sync_peer"]
