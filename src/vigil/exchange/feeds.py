"""The serving side of feeds: what a peer agency may pull, page by page.

A feed of one of this node's banks is *materialised* on demand: the bank's change log
after the feed's last record becomes records (labels filtered by the rule), chained and
checkpoint-signed, stored in ``feed_records``. Peers with the same rule read the same
stored chain; nothing is signed twice. Feed sequence numbers are the bank's own change
sequence numbers, so a record's ``seq`` is also its origin sequence number.

A mirror bank that its origin allowed to be passed on is served from the records this
node received, unchanged, with the origin's signatures; pages end on a signed record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, Text, cast, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.exchange.records import (
    SIGN_EVERY,
    Descriptor,
    WireRecord,
    canonical,
    filter_labels,
    genesis,
    make_body_fast,
    record_hash,
    sign_checkpoint,
)
from vigil.exchange.rules import mirror_feed
from vigil.store.bulk import bulk_insert_columns
from vigil.store.models import Bank, Change, Entry
from vigil.store.models_exchange import Feed, FeedRecord, ShareRule

MAX_PAGE = 20_000
#: how many change rows one materialising transaction turns into records
MATERIALISE_CHUNK = 20_000


class FeedAccessError(Exception):
    """The calling agency may not read this feed (not shared, or no such bank)."""


@dataclass(frozen=True, slots=True)
class OfferedFeed:
    """A feed an agency may pull: the local bank name, what it is, how far it goes."""

    bank: str
    descriptor: Descriptor
    head: int


@dataclass(frozen=True, slots=True)
class Page:
    descriptor: Descriptor
    head: int
    records: list[WireRecord]


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _target(s: Session, bank: Bank, rule: ShareRule, local: str) -> tuple[Descriptor, int, bool]:
    """(descriptor, head, is_mirror) of what ``rule`` shares of ``bank``."""
    mf = mirror_feed(s, bank.id)
    if mf is not None:
        d = Descriptor.parse(mf.descriptor)
        return d, mf.last_seq, True
    return Descriptor(local, bank.name, tuple(sorted(rule.fields)), rule.reshare), \
        bank.last_seq, False


def offered(engine: Engine, local: str, agency: str) -> list[OfferedFeed]:
    """The feeds ``agency`` may pull from this node (the node's agency is ``local``)."""
    out: list[OfferedFeed] = []
    with Session(engine) as s:
        q = (select(ShareRule, Bank).join(Bank, Bank.id == ShareRule.bank_id)
             .where(ShareRule.agency == agency).order_by(Bank.name))
        for rule, bank in s.execute(q).all():
            d, head, mirror = _target(s, bank, rule, local)
            if mirror and not d.reshare:
                continue  # a rule made before the origin withdrew permission: never serve it
            out.append(OfferedFeed(bank.name, d, head))
    return out


def _origin_feed(s: Session, bank: Bank, d: Descriptor) -> Feed:
    text_ = d.text()
    f = s.scalar(select(Feed).where(Feed.descriptor == text_))
    if f is None:
        f = Feed(bank_id=bank.id, mirror=False, descriptor=text_, origin=d.origin,
                 last_seq=0, last_hash=genesis(d), active=True)
        s.add(f)
        s.flush()
    return f


def materialise(engine: Engine, key: Ed25519PrivateKey, bank_name: str, d: Descriptor,
                upto: int) -> int:
    """Extend the stored feed ``d`` of a local bank up to change ``upto``; returns its end.

    Concurrent workers may race here; the loser's insert fails on the primary key and
    it simply reads what the winner stored.
    """
    with Session(engine) as s:  # the common case, already materialised: no lock taken
        known = s.execute(select(Feed.last_seq, Bank.last_seq)
                          .join(Bank, Bank.id == Feed.bank_id)
                          .where(Feed.descriptor == d.text(), Bank.name == bank_name)).first()
        if known is not None and known[0] >= min(upto, known[1]):
            return int(known[0])
    while True:
        try:
            with Session(engine) as s, s.begin():
                bank = s.scalar(select(Bank).where(Bank.name == bank_name))
                if bank is None:
                    raise FeedAccessError(bank_name)
                f = _origin_feed(s, bank, d)
                if s.get_bind().dialect.name == "postgresql":
                    s.execute(text("SELECT 1 FROM feeds WHERE id = :i FOR UPDATE"), {"i": f.id})
                    s.refresh(f)
                end = min(upto, bank.last_seq, f.last_seq + MATERIALISE_CHUNK)
                if end <= f.last_seq:
                    return f.last_seq
                # labels and extra as their stored JSON text: decoded once per distinct
                # text (a bank has few label sets), extra only for video entries
                q = (select(Change.seq, Change.op, cast(Change.labels, Text), Change.at,
                            Entry.signal_type, Entry.value, Entry.quality,
                            cast(Entry.extra, Text))
                     .join(Entry, Entry.id == Change.entry_id)
                     .where(Change.bank_id == bank.id, Change.seq > f.last_seq,
                            Change.seq <= end).order_by(Change.seq))
                seqs: list[int] = []
                bodies: list[str] = []
                hashes: list[str] = []
                sigs: list[str | None] = []
                seq, prev = f.last_seq, f.last_hash
                iso: dict[datetime, str] = {}  # a bulk change shares one timestamp
                labels_json: dict[str | None, str | None] = {}
                for cseq, op, labels, at, st, value, quality, extra in s.execute(q):
                    if cseq != seq + 1:  # the change log is gap-free; anything else is a bug
                        raise RuntimeError(f"bank {bank_name}: change {seq + 1} missing")
                    if op == "remove":
                        lab = None
                    elif labels in labels_json:
                        lab = labels_json[labels]
                    else:
                        filtered = filter_labels((json.loads(labels) if labels else None) or {},
                                                 d.fields)
                        lab = labels_json[labels] = canonical(filtered) if filtered else None
                    at_json = iso.get(at) or iso.setdefault(at, canonical(_iso(at)))
                    frames = (json.loads(extra) or {}).get("vpdq") \
                        if st == "vpdq" and op != "remove" and extra else None
                    body = make_body_fast(cseq, prev, op, st, value, quality, lab, at_json,
                                          frames)
                    h = record_hash(body)
                    seqs.append(cseq)
                    bodies.append(body)
                    hashes.append(h)
                    sigs.append(sign_checkpoint(key, d, cseq, h)
                                if cseq % SIGN_EVERY == 0 or cseq == end else None)
                    seq, prev = cseq, h
                bulk_insert_columns(s.connection(), FeedRecord.__table__, {
                    "feed_id": [f.id] * len(seqs), "seq": seqs, "body": bodies,
                    "hash": hashes, "sig": sigs})
                s.execute(update(Feed).where(Feed.id == f.id)
                          .values(last_seq=seq, last_hash=prev))
                if seq >= min(upto, bank.last_seq):
                    return seq
        except IntegrityError:
            continue  # another worker materialised the same records: read theirs


def materialise_shared(engine: Engine, key: Ed25519PrivateKey, local: str, bank: str,
                       agency: str) -> int:
    """Materialise now the whole feed ``agency`` will pull of ``bank`` (``vigil bank share``
    does this), so the first pull reads stored records instead of having the origin build
    them page by page while serving it: on one 2-core box a cold first sync of 1M records
    took ~50 s longer than a warm one. Returns the feed's end (0 for a mirror passed on:
    its records are the ones received, nothing to build)."""
    with Session(engine) as s:
        b, rule = rule_for(s, bank, agency)
        d, head, mirror = _target(s, b, rule, local)
    return 0 if mirror else materialise(engine, key, bank, d, head)


def rule_for(s: Session, bank: str, agency: str) -> tuple[Bank, ShareRule]:
    b = s.scalar(select(Bank).where(Bank.name == bank))
    rule = None if b is None else s.scalar(
        select(ShareRule).where(ShareRule.bank_id == b.id, ShareRule.agency == agency))
    if b is None or rule is None:
        raise FeedAccessError(bank)
    return b, rule


def page(engine: Engine, key: Ed25519PrivateKey, local: str, agency: str, bank: str,
         after: int, limit: int) -> Page:
    """Records of ``bank``'s feed for ``agency`` after ``after``, ending on a signed record."""
    limit = max(1, min(limit, MAX_PAGE))
    with Session(engine) as s:
        b, rule = rule_for(s, bank, agency)
        d, head, mirror = _target(s, b, rule, local)
        if mirror and not d.reshare:
            raise FeedAccessError(bank)
    if not mirror:
        materialise(engine, key, bank, d, after + limit)
    with Session(engine) as s:
        fid = s.scalar(select(Feed.id).where(Feed.descriptor == d.text()))
        if fid is None or after >= head:
            return Page(d, head, [])
        rows = s.execute(select(FeedRecord.seq, FeedRecord.body, FeedRecord.hash,
                                FeedRecord.sig)
                         .where(FeedRecord.feed_id == fid, FeedRecord.seq > after,
                                FeedRecord.seq <= after + limit)
                         .order_by(FeedRecord.seq)).all()
        if mirror:
            # end on the origin's last signature in range, or reach forward to the next one
            last = max((i for i, r in enumerate(rows) if r.sig), default=-1)
            if last >= 0:
                rows = rows[:last + 1]
            else:
                nxt = s.scalar(select(FeedRecord.seq).where(
                    FeedRecord.feed_id == fid, FeedRecord.seq > after + limit,
                    FeedRecord.sig.is_not(None)).order_by(FeedRecord.seq).limit(1))
                rows = [] if nxt is None else s.execute(
                    select(FeedRecord.seq, FeedRecord.body, FeedRecord.hash, FeedRecord.sig)
                    .where(FeedRecord.feed_id == fid, FeedRecord.seq > after,
                           FeedRecord.seq <= nxt).order_by(FeedRecord.seq)).all()
    records = [WireRecord(r.body, r.hash, r.sig) for r in rows]
    if records and records[-1].sig is None:  # origin: sign the page's end once, keep it
        last = records[-1]
        seq = int(rows[-1].seq)
        sig = sign_checkpoint(key, d, seq, last.hash)
        with Session(engine) as s, s.begin():
            s.execute(update(FeedRecord).where(FeedRecord.feed_id == fid,
                                               FeedRecord.seq == seq).values(sig=sig))
        records[-1] = WireRecord(last.body, last.hash, sig)
    return Page(d, head, records)
