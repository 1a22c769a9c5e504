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

The next page is fetched while the current one is applied (one request in flight).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
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
    VerifiedPage,
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


def to_entry_records(d: Descriptor, records: list[tuple[dict[str, Any], WireRecord]],
                     ) -> list[EntryRecord]:
    """Feed records as bank records; a record that is not a valid entry names its seq.

    Records with the same labels share one ``Labels`` object: it is validated once, and
    ``Banks.apply`` derives (and serialises) its columns once per object, not per record.
    """
    out = []
    prefix = f"{d}#"
    labels: dict[tuple[Any, ...], Labels] = {}
    for body, _ in records:
        try:
            if body["op"] == "remove":
                out.append(EntryRecord(body["type"], body["value"], op="remove"))
            else:
                # provenance: the origin's sequence number is the entry's id in its source
                # (a shared empty ``extra``: nothing to serialise per entry)
                extra = {"vpdq": body["frames"]} if body.get("frames") else _NO_EXTRA
                key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                   for k, v in (body.get("labels") or {}).items()))
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


class PeerSyncer:
    """Syncs the feeds of one peer into this node's mirror banks."""

    def __init__(self, engine: Engine, home: Path, peer: str, *, page_size: int = DEFAULT_PAGE,
                 timeout: float = 120, audit: AuditLog | None = None,
                 progress: Callable[[FeedSync], None] | None = None) -> None:
        self.engine, self.home, self.peer = engine, home, peer
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
        key = public_key(key_hex)
        after, prev = feed.last_seq, feed.last_hash
        pool = ThreadPoolExecutor(1, thread_name_prefix="vigil-feed-fetch")
        try:
            pending: Future[httpx.Response] = pool.submit(client.page, remote_bank, after,
                                                          self.page_size)
            while True:
                r = pending.result()
                if r.status_code == 403:
                    raise FeedError(f"feed {d}: {self.peer} no longer shares it with us (403); "
                                    "what was pulled before stays")
                if r.status_code != 200:
                    raise FeedError(f"feed {d}: {self.peer} answered {r.status_code}: "
                                    f"{_problem(r)}")
                data = r.json()
                if Descriptor.parse(data["feed"]) != d:
                    raise FeedError(f"feed {d}: the page is of another feed ({data['feed']})")
                fs.head = int(data["head"])
                wire = [WireRecord(*x) for x in data["records"]]
                if not wire:
                    break
                vp = verify_page(d, key, after, prev, wire)
                if vp.error is None and vp.last_seq < fs.head:
                    pending = pool.submit(client.page, remote_bank, vp.last_seq, self.page_size)
                self._apply(feed, d, vp, fs)
                after, prev = vp.last_seq, vp.last_hash
                fs.after = after
                if self.progress:
                    self.progress(fs)
                if vp.error is not None:
                    raise FeedError(vp.error)
                if after >= fs.head:
                    break
            self._set_error(feed.id, None)
        except (FeedError, PeerError, BankError, ValueError, KeyError, TypeError) as exc:
            fs.error = str(exc) if isinstance(exc, (FeedError, PeerError, BankError)) else \
                f"feed {d}: malformed page ({type(exc).__name__}: {exc})"
            self._set_error(feed.id, fs.error)
            log.warning("%s", fs.error)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return fs

    def _apply(self, feed: Feed, d: Descriptor, vp: VerifiedPage, fs: FeedSync) -> None:
        if not vp.records:
            return
        records = to_entry_records(d, vp.records)
        keep = d.reshare  # records are kept verbatim only where they may be passed on
        rows = [{"feed_id": feed.id, "seq": b["seq"], "body": w.body, "hash": w.hash,
                 "sig": w.sig} for b, w in vp.records] if keep else []

        def checkpoint(s: Session) -> None:
            moved = s.execute(update(Feed).where(Feed.id == feed.id,
                                                 Feed.last_seq == vp.records[0][0]["seq"] - 1)
                              .values(last_seq=vp.last_seq, last_hash=vp.last_hash,
                                      synced_at=utcnow(), error=None))
            if moved.rowcount != 1:  # another sync of the same feed got here first
                raise FeedError(f"feed {d}: checkpoint moved under us (concurrent sync); "
                                "nothing applied from this page")
            if rows:
                bulk_insert(s.connection(), FeedRecord.__table__, rows)

        res = Banks(self.engine, user=f"feed:{d.origin}").apply(
            mirror_name(d), records, source=f"feed {d} via {self.peer}",
            origin_agency=d.origin, mirror=True, before_commit=checkpoint)
        fs.added += res.added
        fs.updated += res.updated
        fs.removed += res.removed

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
