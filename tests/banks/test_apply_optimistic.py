"""``Banks.apply(optimistic=True)`` (the first-sync fast path) against the full path.

The optimistic path inserts a batch's adds without looking them up and falls back to the
full path when the bank already holds one of the values; either way the bank must end up
exactly as the full path leaves it: entries, labels, provenance and the change log.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.banks import ApplyResult, Banks
from vigil.banks.entry import EntryRecord, Labels
from vigil.store.models import Bank, Change, Entry

LABELS = [Labels(category=("us", "1")), Labels(category=("us", "2"), series="S1"),
          Labels(), Labels(victim_status="identified", tags=("a", "b"), note="n")]


def _state(engine: Engine, bank: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A bank's entries and change log, without ids and timestamps (which differ by run)."""
    with Session(engine) as s:
        bid = s.scalar(select(Bank.id).where(Bank.name == bank))
        entries = [tuple(r) for r in s.execute(
            select(Entry.signal_type, Entry.value, Entry.quality, Entry.category_scheme,
                   Entry.category, Entry.series, Entry.victim_status, Entry.tags, Entry.note,
                   Entry.origin_agency, Entry.source, Entry.source_id, Entry.seq,
                   Entry.removed, Entry.extra).where(Entry.bank_id == bid)
            .order_by(Entry.signal_type, Entry.value))]
        ids = dict(s.execute(select(Entry.id, Entry.value).where(Entry.bank_id == bid)).all())
        changes = [(seq, op, ids[eid], t, labels) for seq, op, eid, t, labels in s.execute(
            select(Change.seq, Change.op, Change.entry_id, Change.signal_type, Change.labels)
            .where(Change.bank_id == bid).order_by(Change.seq))]
    return entries, changes


def _random_stream(rng: random.Random, n: int, pool: int) -> list[EntryRecord]:
    """Adds, relabels, re-adds and removals over a small pool of values (many repeats)."""
    out = []
    for i in range(n):
        t = rng.choice(("pdq", "md5"))
        v = f"{rng.randrange(pool):0{64 if t == 'pdq' else 32}x}"
        if rng.random() < 0.15:
            out.append(EntryRecord(t, v, op="remove"))
        else:
            out.append(EntryRecord(t, v, rng.choice(LABELS), 90 if t == "pdq" else None,
                                   source_id=f"SG/b#{i}",
                                   extra={"k": i} if rng.random() < 0.1 else {}))
    return out


def _same(engine: Engine, calls: list[list[EntryRecord]], batch: int) -> None:
    banks = Banks(engine, user="t")
    for name in ("full", "fast"):
        banks.create(name, "SG-SPF")
    results: dict[str, list[ApplyResult]] = {"full": [], "fast": []}
    for recs in calls:
        for name in ("full", "fast"):
            results[name].append(banks.apply(name, recs, source="feed", origin_agency="SG-SPF",
                                             batch_size=batch, mirror=True,
                                             optimistic=name == "fast"))
    assert _state(engine, "fast") == _state(engine, "full")
    assert [(r.added, r.updated, r.unchanged, r.removed, r.not_found)
            for r in results["fast"]] == [(r.added, r.updated, r.unchanged, r.removed,
                                           r.not_found) for r in results["full"]]
    assert banks.get("fast").last_seq == banks.get("full").last_seq


def test_new_values_take_the_fast_path_and_match_the_full_path(engine: Engine) -> None:
    rng = random.Random(7)
    recs = [EntryRecord("pdq", f"{rng.getrandbits(256):064x}", rng.choice(LABELS), 100,
                        source_id=f"SG/b#{i}") for i in range(2_000)]
    _same(engine, [recs[:700], recs[700:]], batch=300)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_streams_with_conflicts_match_the_full_path(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    calls = [_random_stream(rng, rng.randrange(50, 400), pool=300) for _ in range(5)]
    _same(engine, calls, batch=rng.choice((7, 50, 1000)))


def test_a_conflicting_batch_writes_nothing_twice(engine: Engine) -> None:
    """A batch whose adds partly exist falls back whole: no duplicate, gap-free seqs."""
    banks = Banks(engine, user="t")
    banks.create("m", "SG-SPF")
    lab = Labels(category=("us", "1"))
    first = [EntryRecord("md5", f"{i:032x}", lab) for i in range(10)]
    banks.apply("m", first, mirror=True, optimistic=True)
    again = [EntryRecord("md5", f"{i:032x}", lab) for i in range(5, 20)]  # 5-9 exist
    r = banks.apply("m", again, mirror=True, optimistic=True)
    assert (r.added, r.unchanged) == (10, 5)
    with Session(engine) as s:
        seqs = sorted(s.scalars(select(Change.seq)))
    assert seqs == list(range(1, 21)) and banks.get("m").entries == 20
