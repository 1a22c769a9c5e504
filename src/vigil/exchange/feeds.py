"""The serving side of feeds: what a peer agency may pull, page by page.

A feed of one of this node's banks is *materialised* on demand: the bank's change log
after the feed's last record becomes records (labels filtered by the rule), chained and
checkpoint-signed, stored in ``feed_records``. A record carries the entry's content as it
is when the record is made (a video's frames, a picture's derived data). Peers with the
same rule read the same stored chain; nothing is signed twice. Feed sequence numbers are
the bank's own change sequence numbers, so a record's ``seq`` is also its origin sequence
number.

A mirror bank that its origin allowed to be passed on is served from the records this
node received, unchanged, with the origin's signatures; pages end on a signed record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from vigil.banks.travel import travelling
from vigil.exchange import repo
from vigil.exchange.records import (
    SIGN_EVERY,
    Descriptor,
    WireRecord,
    canonical,
    filter_labels,
    make_body_fast,
    record_hash,
    sign_checkpoint,
)

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
    #: the bank keeps a crop ladder (for a mirror passed on: inherited from its origin)
    crop_ladder: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    descriptor: Descriptor
    head: int
    records: list[WireRecord]


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _target(b: repo.SharedBank, local: str) -> tuple[Descriptor, int, bool]:
    """(descriptor, head, is_mirror) of what a rule shares of a bank."""
    if b.mirror_of is not None:
        return Descriptor.parse(b.mirror_of), b.mirror_last_seq, True
    return Descriptor(local, b.name, b.fields, b.reshare), b.last_seq, False


def offered(engine: Engine, local: str, agency: str) -> list[OfferedFeed]:
    """The feeds ``agency`` may pull from this node (the node's agency is ``local``)."""
    out: list[OfferedFeed] = []
    for b in repo.shared_with(engine, agency):
        d, head, mirror = _target(b, local)
        if mirror and not d.reshare:
            continue  # a rule made before the origin withdrew permission: never serve it
        out.append(OfferedFeed(b.name, d, head, b.crop_ladder))
    return out


def _builder(key: Ed25519PrivateKey, d: Descriptor,
             ) -> Callable[[Iterable[repo.ChangeRow], int, str, int], repo.Built]:
    """The records of a chunk of a bank's change log, chained and checkpoint-signed."""

    def build(rows: Iterable[repo.ChangeRow], seq: int, prev: str, end: int) -> repo.Built:
        seqs: list[int] = []
        bodies: list[str] = []
        hashes: list[str] = []
        sigs: list[str | None] = []
        iso: dict[datetime, str] = {}  # a bulk change shares one timestamp
        labels_json: dict[str | None, str | None] = {}
        for cseq, op, labels, at, st, value, quality, extra in rows:
            if cseq != seq + 1:  # the change log is gap-free; anything else is a bug
                raise RuntimeError(f"bank {d.bank}: change {seq + 1} missing")
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
            derived_json = None
            # (a plain entry's extra is not even decoded: most of a bank is plain)
            if st == "pdq" and op != "remove" and extra and '"pdq_' in extra:
                derived = travelling(json.loads(extra))
                derived_json = canonical(derived) if derived else None
            body = make_body_fast(cseq, prev, op, st, value, quality, lab, at_json, frames,
                                  derived_json)
            h = record_hash(body)
            seqs.append(cseq)
            bodies.append(body)
            hashes.append(h)
            sigs.append(sign_checkpoint(key, d, cseq, h)
                        if cseq % SIGN_EVERY == 0 or cseq == end else None)
            seq, prev = cseq, h
        return seqs, bodies, hashes, sigs, seq, prev

    return build


def materialise(engine: Engine, key: Ed25519PrivateKey, bank_name: str, d: Descriptor,
                upto: int) -> int:
    """Extend the stored feed ``d`` of a local bank up to change ``upto``; returns its end.

    Concurrent workers may race here; the loser's insert fails on the primary key and
    it simply reads what the winner stored.
    """
    known = repo.materialised_to(engine, bank_name, d)
    if known is not None and known[0] >= min(upto, known[1]):
        return known[0]  # the common case, already materialised: no lock taken
    end = repo.extend_feed(engine, bank_name, d, upto, MATERIALISE_CHUNK, _builder(key, d))
    if end is None:
        raise FeedAccessError(bank_name)
    return end


def materialise_shared(engine: Engine, key: Ed25519PrivateKey, local: str, bank: str,
                       agency: str) -> int:
    """Materialise now the whole feed ``agency`` will pull of ``bank`` (``vigil bank share``
    does this), so the first pull reads stored records instead of having the origin build
    them page by page while serving it: on one 2-core box a cold first sync of 1M records
    took ~50 s longer than a warm one. Returns the feed's end (0 for a mirror passed on:
    its records are the ones received, nothing to build)."""
    b = repo.shared_bank(engine, bank, agency)
    if b is None:
        raise FeedAccessError(bank)
    d, head, mirror = _target(b, local)
    return 0 if mirror else materialise(engine, key, bank, d, head)


def page(engine: Engine, key: Ed25519PrivateKey, local: str, agency: str, bank: str,
         after: int, limit: int) -> Page:
    """Records of ``bank``'s feed for ``agency`` after ``after``, ending on a signed record."""
    limit = max(1, min(limit, MAX_PAGE))
    b = repo.shared_bank(engine, bank, agency)
    if b is None:
        raise FeedAccessError(bank)
    d, head, mirror = _target(b, local)
    if mirror and not d.reshare:
        raise FeedAccessError(bank)
    if not mirror:
        materialise(engine, key, bank, d, after + limit)
    fid, rows = repo.feed_records(engine, d, after, limit, head, mirror)
    records = [WireRecord(body, h, sig) for _, body, h, sig in rows]
    if records and records[-1].sig is None and fid is not None:
        # origin: sign the page's end once, keep it
        last, seq = records[-1], rows[-1][0]
        sig = sign_checkpoint(key, d, seq, last.hash)
        repo.sign_record(engine, fid, seq, sig)
        records[-1] = WireRecord(last.body, last.hash, sig)
    return Page(d, head, records)
