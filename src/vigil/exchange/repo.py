"""Every database read and write of the exchange workflow, in one place.

Why one module: federation touches many tables (sharing rules, feeds, their records,
peers, opinions, the banks they are about), and queries spread over every module made it
hard to see which transaction holds which lock, or what a schema change breaks. The other
modules of ``vigil.exchange`` decide (what may be shared, what verified, what to refuse)
and call the functions here to read and write; they hold no session and build no query.
Mirror banks themselves are created by the banks domain (``Banks.create_mirror``).

Rows leave as the plain dataclasses below, never as ORM objects bound to a session.
Where a decision must be taken inside a write's transaction (a sharing rule checked
against the bank it names), the caller passes it in as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as as_type

from sqlalchemy import Engine, Table, Text, cast, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.banks import BankError
from vigil.exchange.records import Descriptor, genesis
from vigil.store.bulk import bulk_insert, bulk_insert_columns
from vigil.store.dialects import lock_feed_row
from vigil.store.models import Bank, Change, Entry, utcnow
from vigil.store.models_exchange import Feed, FeedRecord, Opinion, Peer, ShareRule
from vigil.store.models_node import Agency

#: the feed records table for bulk inserts (declarative models type it as a FromClause)
_FEED_RECORDS = as_type(Table, FeedRecord.__table__)

# ---- rows as the exchange modules see them ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class BankFacts:
    """A bank as federation needs it: owner, newest change, and what it mirrors (if any)."""

    id: int
    name: str
    agency: str
    last_seq: int
    #: the descriptor text of the feed it mirrors; None for a bank of this node
    mirror_of: str | None


@dataclass(frozen=True, slots=True)
class RuleInfo:
    bank: str
    agency: str
    fields: tuple[str, ...]
    reshare: bool
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class MirrorInfo:
    """Where a mirror bank comes from and how current it is."""

    origin: str
    origin_bank: str
    fields: tuple[str, ...]
    reshare: bool
    peer: str | None
    last_seq: int
    synced_at: datetime | None
    active: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class SharedBank:
    """A bank shared with an agency: the rule, and the bank's own state."""

    name: str
    last_seq: int
    fields: tuple[str, ...]
    reshare: bool
    #: for a mirror passed on: the descriptor it mirrors and how far it is pulled
    mirror_of: str | None
    mirror_last_seq: int
    #: the bank keeps derived codes of its pictures (its own flag, or its origin's)
    crop_ladder: bool = False


@dataclass(frozen=True, slots=True)
class OpinionInfo:
    id: int
    bank: str
    agency: str
    signal_type: str
    value: str
    opinion: str
    reason: str
    by: str | None
    at: datetime
    #: for an opinion about a mirrored entry: whose bank it is and its name there
    origin: str | None = None
    origin_bank: str | None = None


@dataclass(frozen=True, slots=True)
class PeerInfo:
    name: str
    agency: str
    url: str
    public_key: str
    synced_at: datetime | None
    error: str | None
    feeds: int


@dataclass(frozen=True, slots=True)
class MirrorFeed:
    """A mirror's feed as a sync starts it: where its verified chain ends."""

    id: int
    last_seq: int
    last_hash: str
    #: the mirror bank was just made, or has nothing yet (running servers must learn of it)
    fresh: bool
    #: the origin changed what the feed carries: its chain starts again from the genesis
    restarted: bool = False


#: one change of a bank's log as a feed record is made from it: seq, op, labels (JSON
#: text), at, signal type, value, quality, extra (JSON text)
ChangeRow = tuple[int, str, str | None, datetime, str, str, int | None, str | None]
#: feed records as stored: seq, body, hash, signature
RecordRow = tuple[int, str, str, str | None]


def _facts(s: Session, b: Bank) -> BankFacts:
    mirrored = s.scalar(select(Feed.descriptor).where(Feed.bank_id == b.id,
                                                      Feed.mirror.is_(True)))
    return BankFacts(b.id, b.name, b.agency, b.last_seq, mirrored)


def bank_facts(engine: Engine, name: str) -> BankFacts | None:
    """The bank named ``name`` (None if there is none)."""
    with Session(engine) as s:
        b = s.scalar(select(Bank).where(Bank.name == name))
        return None if b is None else _facts(s, b)


def _bank_or_error(s: Session, name: str) -> Bank:
    b = s.scalar(select(Bank).where(Bank.name == name))
    if b is None:
        raise BankError(f"no bank named {name!r}")
    return b


# ---- sharing rules ---------------------------------------------------------------------------

def put_rule(engine: Engine, bank: str, agency: str,
             decide: Callable[[BankFacts], tuple[tuple[str, ...], bool]],
             by: str | None) -> RuleInfo:
    """Create or replace the rule sharing ``bank`` with ``agency``; ``decide`` (called in
    the same transaction, may raise) turns the bank's facts into (fields, reshare)."""
    with Session(engine) as s, s.begin():
        b = _bank_or_error(s, bank)
        fields, reshare = decide(_facts(s, b))
        rule = s.scalar(select(ShareRule).where(ShareRule.bank_id == b.id,
                                                ShareRule.agency == agency))
        if rule is None:
            rule = ShareRule(bank_id=b.id, agency=agency)
            s.add(rule)
        rule.fields, rule.reshare = list(fields), reshare
        rule.created_at, rule.created_by = utcnow(), by
        s.flush()
        return RuleInfo(b.name, agency, tuple(fields), reshare, rule.created_at, by)


def delete_rule(engine: Engine, bank: str, agency: str) -> bool:
    """Remove the rule sharing ``bank`` with ``agency``; False if there was none."""
    with Session(engine) as s, s.begin():
        b = _bank_or_error(s, bank)
        res = s.execute(delete(ShareRule).where(ShareRule.bank_id == b.id,
                                                ShareRule.agency == agency))
        return bool(res.rowcount)  # type: ignore[attr-defined]  # CursorResult of a DELETE


def list_rules(engine: Engine, bank: str | None = None, agency: str | None = None,
               owner: str | None = None) -> list[RuleInfo]:
    with Session(engine) as s:
        q = (select(ShareRule, Bank).join(Bank, Bank.id == ShareRule.bank_id)
             .order_by(Bank.name, ShareRule.agency))
        if bank is not None:
            q = q.where(Bank.id == _bank_or_error(s, bank).id)
        if agency is not None:
            q = q.where(ShareRule.agency == agency)
        if owner is not None:
            q = q.where(Bank.agency == owner)
        return [RuleInfo(b.name, r.agency, tuple(r.fields), r.reshare, r.created_at,
                         r.created_by) for r, b in s.execute(q)]


def mirror_info(engine: Engine, bank: str) -> MirrorInfo | None:
    """The provenance and sync state of mirror bank ``bank`` (None for a local bank)."""
    with Session(engine) as s:
        b = _bank_or_error(s, bank)
        f = s.scalar(select(Feed).where(Feed.bank_id == b.id, Feed.mirror.is_(True)))
        if f is None:
            return None
        d = Descriptor.parse(f.descriptor)
        return MirrorInfo(d.origin, d.bank, d.fields, d.reshare, f.peer, f.last_seq,
                          f.synced_at, f.active, f.error)


def mirror_names(engine: Engine) -> dict[str, str]:
    """Local mirror bank name -> ``ORIGIN/bank`` it mirrors."""
    with Session(engine) as s:
        rows = s.execute(select(Bank.name, Feed.descriptor)
                         .join(Feed, (Feed.bank_id == Bank.id) & Feed.mirror.is_(True))).all()
    return {name: str(Descriptor.parse(d)) for name, d in rows}


# ---- feeds this node serves --------------------------------------------------------------------

def _shared(s: Session, rule: ShareRule, b: Bank) -> SharedBank:
    mf = s.scalar(select(Feed).where(Feed.bank_id == b.id, Feed.mirror.is_(True)))
    return SharedBank(b.name, b.last_seq, tuple(sorted(rule.fields)), rule.reshare,
                      None if mf is None else mf.descriptor,
                      0 if mf is None else mf.last_seq, bool(b.crop_ladder))


def shared_with(engine: Engine, agency: str) -> list[SharedBank]:
    """Every bank shared with ``agency``, by name."""
    with Session(engine) as s:
        q = (select(ShareRule, Bank).join(Bank, Bank.id == ShareRule.bank_id)
             .where(ShareRule.agency == agency).order_by(Bank.name))
        return [_shared(s, rule, b) for rule, b in s.execute(q).all()]


def shared_bank(engine: Engine, bank: str, agency: str) -> SharedBank | None:
    """``bank`` as shared with ``agency``; None when it is not (or does not exist)."""
    with Session(engine) as s:
        b = s.scalar(select(Bank).where(Bank.name == bank))
        rule = None if b is None else s.scalar(
            select(ShareRule).where(ShareRule.bank_id == b.id, ShareRule.agency == agency))
        return None if b is None or rule is None else _shared(s, rule, b)


def materialised_to(engine: Engine, bank: str, d: Descriptor) -> tuple[int, int] | None:
    """(end of the stored feed ``d``, the bank's newest change), or None if not stored."""
    with Session(engine) as s:
        known = s.execute(select(Feed.last_seq, Bank.last_seq)
                          .join(Bank, Bank.id == Feed.bank_id)
                          .where(Feed.descriptor == d.text(), Bank.name == bank)).first()
    return None if known is None else (int(known[0]), int(known[1]))


#: what ``extend_feed``'s builder returns: the new records column by column (seqs, bodies,
#: hashes, signatures) and the chain's new end (seq, hash)
Built = tuple[list[int], list[str], list[str], list[str | None], int, str]


def extend_feed(engine: Engine, bank: str, d: Descriptor, upto: int, chunk: int,
                build: Callable[[Iterable[ChangeRow], int, str, int], Built]) -> int | None:
    """Extend the stored feed ``d`` of local bank ``bank`` towards change ``upto``, at most
    ``chunk`` changes a transaction; returns the feed's new end (None: no such bank).

    ``build(changes, after_seq, after_hash, end)`` turns the bank's changes after the
    feed's end into records. Concurrent workers may race here; the loser's insert fails on
    the primary key and it reads what the winner stored.
    """
    while True:
        try:
            with Session(engine) as s, s.begin():
                b = s.scalar(select(Bank).where(Bank.name == bank))
                if b is None:
                    return None
                f = s.scalar(select(Feed).where(Feed.descriptor == d.text()))
                if f is None:
                    f = Feed(bank_id=b.id, mirror=False, descriptor=d.text(), origin=d.origin,
                             last_seq=0, last_hash=genesis(d), active=True)
                    s.add(f)
                    s.flush()
                if lock_feed_row(s, f.id):
                    s.refresh(f)
                end = min(upto, b.last_seq, f.last_seq + chunk)
                if end <= f.last_seq:
                    return f.last_seq
                # labels and extra as their stored JSON text: the builder decodes each
                # distinct text once (a bank has few label sets)
                q = (select(Change.seq, Change.op, cast(Change.labels, Text), Change.at,
                            Entry.signal_type, Entry.value, Entry.quality,
                            cast(Entry.extra, Text))
                     .join(Entry, Entry.id == Change.entry_id)
                     .where(Change.bank_id == b.id, Change.seq > f.last_seq,
                            Change.seq <= end).order_by(Change.seq))
                rows = (tuple(r) for r in s.execute(q))
                seqs, bodies, hashes, sigs, seq, prev = build(
                    rows, f.last_seq, f.last_hash, end)  # type: ignore[arg-type]  # Row tuples
                bulk_insert_columns(s.connection(), _FEED_RECORDS, {
                    "feed_id": [f.id] * len(seqs), "seq": seqs, "body": bodies,
                    "hash": hashes, "sig": sigs})
                s.execute(update(Feed).where(Feed.id == f.id)
                          .values(last_seq=seq, last_hash=prev))
                if seq >= min(upto, b.last_seq):
                    return seq
        except IntegrityError:
            continue  # another worker materialised the same records: read theirs


def feed_records(engine: Engine, d: Descriptor, after: int, limit: int, head: int,
                 mirror: bool) -> tuple[int | None, list[RecordRow]]:
    """(feed id, its stored records after ``after``, at most ``limit``) — for a mirror
    passed on, ending on the origin's last signature in range, or reaching forward to the
    next one (it may only be served as the origin signed it)."""
    with Session(engine) as s:
        fid = s.scalar(select(Feed.id).where(Feed.descriptor == d.text()))
        if fid is None or after >= head:
            return fid, []
        cols = (FeedRecord.seq, FeedRecord.body, FeedRecord.hash, FeedRecord.sig)
        rows = s.execute(select(*cols).where(FeedRecord.feed_id == fid, FeedRecord.seq > after,
                                             FeedRecord.seq <= after + limit)
                         .order_by(FeedRecord.seq)).all()
        if mirror:
            last = max((i for i, r in enumerate(rows) if r.sig), default=-1)
            if last >= 0:
                rows = rows[:last + 1]
            else:
                nxt = s.scalar(select(FeedRecord.seq).where(
                    FeedRecord.feed_id == fid, FeedRecord.seq > after + limit,
                    FeedRecord.sig.is_not(None)).order_by(FeedRecord.seq).limit(1))
                rows = [] if nxt is None else s.execute(
                    select(*cols).where(FeedRecord.feed_id == fid, FeedRecord.seq > after,
                                        FeedRecord.seq <= nxt).order_by(FeedRecord.seq)).all()
    return fid, [(int(r.seq), r.body, r.hash, r.sig) for r in rows]


def sign_record(engine: Engine, feed_id: int, seq: int, sig: str) -> None:
    """Keep a checkpoint signature made for a page's end (so it is made once)."""
    with Session(engine) as s, s.begin():
        s.execute(update(FeedRecord).where(FeedRecord.feed_id == feed_id,
                                           FeedRecord.seq == seq).values(sig=sig))


# ---- opinions ----------------------------------------------------------------------------------

def _opinion(o: Opinion, bank: str, d: Descriptor | None) -> OpinionInfo:
    return OpinionInfo(o.id, bank, o.agency, o.signal_type, o.value, o.opinion, o.reason,
                       o.by, o.at, d.origin if d else None, d.bank if d else None)


def has_entry(engine: Engine, bank_id: int, signal_type: str, value: str) -> bool:
    """Whether the bank holds (or held: removed entries stay) this signal."""
    with Session(engine) as s:
        return s.scalar(select(Entry.id).where(Entry.bank_id == bank_id,
                                               Entry.signal_type == signal_type,
                                               Entry.value == value)) is not None


def add_opinions(engine: Engine, bank: BankFacts, agency: str, signals: Sequence[tuple[str, str]],
                 opinion: str, reason: str, by: str | None) -> list[OpinionInfo]:
    d = Descriptor.parse(bank.mirror_of) if bank.mirror_of else None
    out = []
    with Session(engine) as s, s.begin():
        for t, v in signals:
            o = Opinion(bank_id=bank.id, agency=agency, signal_type=t, value=v, opinion=opinion,
                        reason=reason, by=by, at=utcnow(), extra={})
            s.add(o)
            s.flush()
            out.append(_opinion(o, bank.name, d))
    return out


def opinions_of(engine: Engine, bank: BankFacts) -> list[OpinionInfo]:
    d = Descriptor.parse(bank.mirror_of) if bank.mirror_of else None
    with Session(engine) as s:
        return [_opinion(o, bank.name, d) for o in s.scalars(
            select(Opinion).where(Opinion.bank_id == bank.id).order_by(Opinion.id))]


def opinions_about(engine: Engine, origin: str, after: int, limit: int) -> list[OpinionInfo]:
    """Local opinions on mirrors of ``origin``'s banks, after opinion id ``after``."""
    with Session(engine) as s:
        q = (select(Opinion, Bank, Feed).join(Bank, Bank.id == Opinion.bank_id)
             .join(Feed, (Feed.bank_id == Bank.id) & Feed.mirror.is_(True))
             .where(Feed.origin == origin, Opinion.id > after, Opinion.remote_id.is_(None))
             .order_by(Opinion.id).limit(limit))
        return [_opinion(o, b.name, Descriptor.parse(f.descriptor)) for o, b, f in s.execute(q)]


@dataclass(frozen=True, slots=True)
class RemoteOpinion:
    """An opinion a peer holds about one of this node's banks, checked and ready to keep."""

    remote_id: int
    bank: str
    signal_type: str
    value: str
    opinion: str
    reason: str
    by: str | None
    at: datetime


def keep_remote_opinions(engine: Engine, local: str, from_agency: str,
                         items: Iterable[RemoteOpinion]) -> int:
    """Keep opinions ``from_agency`` holds about ``local``'s banks (each once); returns how
    many were new. Opinions about banks this node does not have are left out."""
    n = 0
    with Session(engine) as s, s.begin():
        for it in items:
            b = s.scalar(select(Bank).where(Bank.name == it.bank, Bank.agency == local))
            if b is None:
                continue
            if s.scalar(select(Opinion.id).where(Opinion.bank_id == b.id,
                                                 Opinion.agency == from_agency,
                                                 Opinion.remote_id == it.remote_id)) is not None:
                continue
            s.add(Opinion(bank_id=b.id, agency=from_agency, signal_type=it.signal_type,
                          value=it.value, opinion=it.opinion, reason=it.reason, by=it.by,
                          at=it.at, remote_id=it.remote_id, extra={}))
            n += 1
    return n


# ---- peers and the keys this node trusts ---------------------------------------------------------

def agency_key(engine: Engine, agency: str) -> str | None:
    """The Ed25519 public key (hex) this node holds for ``agency``, if any."""
    with Session(engine) as s:
        a = s.get(Agency, agency)
        return a.public_key if a is not None and a.public_key else None


def set_agency_key(engine: Engine, agency: str, key_hex: str) -> str | None:
    """Record ``key_hex`` as ``agency``'s key unless it has another one or is this node's
    own agency; returns None when set, else the reason ("local" or the key it has)."""
    with Session(engine) as s, s.begin():
        a = s.get(Agency, agency)
        if a is None:
            raise LookupError(agency)  # the caller registers the agency first
        if a.local:
            return "local"
        if a.public_key and a.public_key != key_hex:
            return a.public_key
        a.public_key = key_hex
        return None


def peer_exists(engine: Engine, name: str) -> bool:
    with Session(engine) as s:
        return s.get(Peer, name) is not None


def insert_peer(engine: Engine, name: str, agency: str, url: str, by: str | None) -> None:
    with Session(engine) as s, s.begin():
        s.add(Peer(name=name, agency=agency, url=url, created_at=utcnow(), created_by=by,
                   opinions_after=0))


def _peer_info(s: Session, p: Peer) -> PeerInfo:
    a = s.get(Agency, p.agency)
    n = len(s.scalars(select(Feed.id).where(Feed.peer == p.name)).all())
    return PeerInfo(p.name, p.agency, p.url, (a.public_key if a else None) or "",
                    p.synced_at, p.error, n)


def peer_info(engine: Engine, name: str) -> PeerInfo | None:
    with Session(engine) as s:
        p = s.get(Peer, name)
        return None if p is None else _peer_info(s, p)


def peer_names(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return list(s.scalars(select(Peer.name).order_by(Peer.name)))


def list_peers(engine: Engine) -> list[PeerInfo]:
    with Session(engine) as s:
        return [_peer_info(s, p) for p in s.scalars(select(Peer).order_by(Peer.name))]


def delete_peer(engine: Engine, name: str) -> bool:
    """Forget a peer; its mirror feeds stay, inactive. False if there was no such peer."""
    with Session(engine) as s, s.begin():
        p = s.get(Peer, name)
        if p is None:
            return False
        for f in s.scalars(select(Feed).where(Feed.peer == name)):
            f.active, f.error = False, f"peer {name} removed"
        s.delete(p)
        return True


# ---- pulling from a peer -----------------------------------------------------------------------

def set_peer_result(engine: Engine, name: str, error: str | None) -> None:
    """When the peer was last synced, and how that went (None: every feed is fine)."""
    with Session(engine) as s, s.begin():
        s.execute(update(Peer).where(Peer.name == name).values(synced_at=utcnow(),
                                                                 error=error))


def retire_mirrors(engine: Engine, peer: str, offered: set[str],
                   why: Callable[[Descriptor], str]) -> list[str]:
    """Mark the active mirrors of ``peer`` whose descriptors are not ``offered`` as no
    longer synced (with ``why``); returns the feeds retired."""
    gone = []
    with Session(engine) as s, s.begin():
        for f in s.scalars(select(Feed).where(Feed.peer == peer, Feed.mirror.is_(True),
                                              Feed.active.is_(True))):
            if f.descriptor not in offered:
                d = Descriptor.parse(f.descriptor)
                f.active, f.error = False, why(d)
                gone.append(str(d))
    return gone


def opinions_after(engine: Engine, peer: str) -> int:
    """The last opinion id pulled back from ``peer``."""
    with Session(engine) as s:
        return s.scalar(select(Peer.opinions_after).where(Peer.name == peer)) or 0


def set_opinions_after(engine: Engine, peer: str, after: int) -> None:
    with Session(engine) as s, s.begin():
        s.execute(update(Peer).where(Peer.name == peer).values(opinions_after=after))


def open_mirror(engine: Engine, name: str, d: Descriptor, peer: str,
                ) -> MirrorFeed | str | None:
    """Claim the mirror bank ``name`` of feed ``d`` for a sync from ``peer``: its feed row,
    made active and bound to ``peer`` (restarted from the genesis when the origin changed
    what the feed carries). Returns why not (a string) when the bank is something else or
    another active peer feeds it, and None when there is no such bank yet."""
    with Session(engine) as s, s.begin():
        bank = s.scalar(select(Bank).where(Bank.name == name))
        if bank is None:
            return None
        feed = s.scalar(select(Feed).where(Feed.bank_id == bank.id, Feed.mirror.is_(True)))
        if feed is None:
            return f"a local bank named {name!r} exists and is not a mirror of {d}"
        if feed.peer not in (None, peer) and feed.active:
            return f"feed {d} is already mirrored from peer {feed.peer}"
        restarted = feed.descriptor != d.text()
        if restarted:
            # the origin changed what it shares (other labels): start the chain again;
            # re-applying every record brings the mirror's labels to the new rule
            s.execute(delete(FeedRecord).where(FeedRecord.feed_id == feed.id))
            feed.descriptor, feed.last_seq, feed.last_hash = d.text(), 0, genesis(d)
        feed.peer, feed.active = peer, True
        s.flush()
        return MirrorFeed(feed.id, feed.last_seq, feed.last_hash,
                          bank.last_seq == 0 and feed.last_seq == 0, restarted)


def advance_checkpoint(s: Session, feed_id: int, expected: int, last_seq: int, last_hash: str,
                       rows: list[dict[str, Any]]) -> bool:
    """In the transaction that applies verified records to a mirror: move its checkpoint
    from ``expected`` to (``last_seq``, ``last_hash``) and keep ``rows`` (feed records
    kept verbatim to pass on). False, with nothing written, if another sync moved it."""
    moved = s.execute(update(Feed).where(Feed.id == feed_id, Feed.last_seq == expected)
                      .values(last_seq=last_seq, last_hash=last_hash, synced_at=utcnow(),
                              error=None))
    if moved.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return False
    if rows:
        bulk_insert(s.connection(), _FEED_RECORDS, rows)
    return True


def set_feed_error(engine: Engine, feed_id: int, error: str | None) -> None:
    with Session(engine) as s, s.begin():
        s.execute(update(Feed).where(Feed.id == feed_id).values(error=error,
                                                                 synced_at=utcnow()))
