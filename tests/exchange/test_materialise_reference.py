"""The materialised feed (template bodies, labels decoded once per distinct text) against
the reference: ``make_body`` of every change with its decoded labels, chained in order."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.featuresets import feature_set
from vigil.banks import Banks
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.travel import travelling
from vigil.exchange import feeds
from vigil.exchange.records import Descriptor, filter_labels, genesis, make_body, record_hash
from vigil.node import init_node, signing_key
from vigil.store.models import Bank, Change, Entry
from vigil.store.models_exchange import Feed, FeedRecord

LABELS = [Labels(category=("us", "1")), Labels(category=("us", "2"), series="S 1",
                                               tags=("b", "a"), note='say "hi"\n'),
          Labels(), Labels(victim_status="identified", series="Ünïcode")]


#: a PDQ entry's extra: none, a size, derived codes, codes and features
DERIVED: list[dict[str, object]] = [
    {}, {"size": 12}, {"size": 12, "pdq_derived": [["trimmed", "ab" * 32, 90]]},
    {"pdq_derived": [["centre-0.05", "cd" * 32, 70], ["top-0.1", "ef" * 32, 55]],
     "pdq_features": feature_set(1)}]


def _reference(engine: Engine, bank: str, d: Descriptor) -> list[tuple[int, str, str]]:
    def iso(at: datetime) -> str:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return at.astimezone(UTC).isoformat(timespec="seconds")

    out, prev = [], genesis(d)
    with Session(engine) as s:
        bid = s.scalar(select(Bank.id).where(Bank.name == bank))
        for seq, op, labels, at, st, value, quality, extra in s.execute(
                select(Change.seq, Change.op, Change.labels, Change.at, Entry.signal_type,
                       Entry.value, Entry.quality, Entry.extra)
                .join(Entry, Entry.id == Change.entry_id).where(Change.bank_id == bid)
                .order_by(Change.seq)):
            body = make_body(seq, prev, op, st, value, quality,
                             None if op == "remove" else filter_labels(labels or {}, d.fields),
                             iso(at), (extra or {}).get("vpdq")
                             if st == "vpdq" and op != "remove" else None,
                             travelling(extra) if st == "pdq" and op != "remove" else None)
            prev = record_hash(body)
            out.append((seq, body, prev))
    return out


def test_materialised_bodies_equal_the_reference(engine: Engine, tmp_path: Path) -> None:
    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    rng = random.Random(5)
    b = Banks(engine, user="t")
    b.create("csam", "SG-SPF")
    for _ in range(6):
        recs = []
        for _ in range(rng.randrange(20, 120)):
            t = rng.choice(("pdq", "md5", "vpdq", "photodna"))
            v = (f"{rng.randrange(60):064x}" if t in ("pdq", "vpdq") else
                 f"{rng.randrange(60):032x}" if t == "md5" else f"pd/{rng.randrange(60)}=+")
            if rng.random() < 0.2:
                recs.append(EntryRecord(t, v, op="remove"))
            else:
                recs.append(EntryRecord(t, v, rng.choice(LABELS),
                                        rng.choice((None, 0, 100)) if t == "pdq" else None,
                                        extra={"vpdq": f"0,100,{v},0.0\n"} if t == "vpdq"
                                        else rng.choice(DERIVED) if t == "pdq" else {}))
        b.apply("csam", recs)
    key = signing_key(tmp_path)
    for fields in (("category",), ("category", "note", "series", "tags", "victim_status"), ()):
        d = Descriptor("SG-SPF", "csam", fields, False)
        feeds.materialise(engine, key, "csam", d, 2**62)
        with Session(engine) as s:
            fid = s.scalar(select(Feed.id).where(Feed.descriptor == d.text()))
            got = [tuple(r) for r in s.execute(
                select(FeedRecord.seq, FeedRecord.body, FeedRecord.hash)
                .where(FeedRecord.feed_id == fid).order_by(FeedRecord.seq))]
        assert got == _reference(engine, "csam", d) and len(got) > 100


def test_sharing_builds_the_whole_feed(engine: Engine, tmp_path: Path) -> None:
    from vigil.exchange import rules

    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    b = Banks(engine, user="t")
    b.create("csam", "SG-SPF")
    b.apply("csam", [EntryRecord("md5", f"{i:032x}", LABELS[0]) for i in range(250)])
    rules.share(engine, "csam", "HK-POL", ["category"])
    assert feeds.materialise_shared(engine, signing_key(tmp_path), "SG-SPF", "csam",
                                    "HK-POL") == 250
    d = Descriptor("SG-SPF", "csam", ("category",), False)
    with Session(engine) as s:
        assert s.scalar(select(Feed.last_seq).where(Feed.descriptor == d.text())) == 250
    # the first page is then read, not built
    p = feeds.page(engine, signing_key(tmp_path), "SG-SPF", "HK-POL", "csam", 0, 100)
    assert len(p.records) == 100 and p.head == 250
