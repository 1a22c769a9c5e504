"""The queue kept in SQLite (what a review opens) against the plain queue read whole into
Python (``build_queue``): the same steps, items, order and answers, on generated scans
with duplicates, known items, videos, files that are not pictures, groups whose members
are all known, members of two groups, and on the real demo scan."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from tests.review.conftest import Case
from vigil.review.queue import Queue, build_queue
from vigil.review.sqlqueue import SqlQueue
from vigil.review.store import ReviewStore
from vigil.triage.scandb import GroupRow, MatchRow, ScanDB


def _generated(folder: Path, seed: int) -> None:
    """A finished scan's database with the odd cases a queue must get right."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    db = ScanDB(folder / "scan.db")
    n = rng.randint(40, 160)
    shas = [hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(n)]
    paths, rows = [], []
    for i in range(n + n // 3):
        sha = shas[i] if i < n else rng.choice(shas)  # later files repeat earlier items
        path = f"E01/{'a.zip!/' if i % 7 == 0 else ''}d{i % 5}/f{i:04d}.jpg"
        kind = rng.choices(["image", "video", "other"], [8, 2, 1])[0] if i < n else None
        paths.append((path, None, 100, None))
        rows.append({"path": path, "status": "error" if i % 23 == 5 else "done",
                     "size": 100, "kind": kind, "format": "JPEG", "sha256": sha})
    # a repeated file keeps its item's kind (identical bytes)
    kinds = {r["sha256"]: r["kind"] for r in rows[:n]}
    for r in rows[n:]:
        r["kind"] = kinds[r["sha256"]]
    db.add_pending(paths)
    db.record(rows, [(s, b"jpeg") for s in shas if rng.random() < 0.6])
    known = rng.sample(shas, n // 6)
    db.replace_matches([MatchRow(s, "known", "SG", k, "md5", ["md5"], "original", 0,
                                 "us" if k % 3 else None, str(k % 5), None, "unknown", [])
                        for k, s in enumerate(known)])
    groups = []
    pool = list(shas)
    rng.shuffle(pool)
    ranks = list(range(1, 14))
    rng.shuffle(ranks)
    for g in range(12):
        members = [pool.pop() for _ in range(rng.randint(1, 5))]
        if g == 0:
            members = known[:2]  # every member known: no step
        if g == 1:
            members.append("f" * 64)  # a member the scan never saw
        if g == 2:
            members.append(groups[1].members[0][0])  # a member of two groups
        groups.append(GroupRow(g + 1, ranks[g], len(members), rng.random(),
                               "dev" if g % 2 else None, {"g": g},
                               [(s, rng.choice([-1, 0, 3, 3, 8])) for s in members]))
    db.replace_groups(groups)
    db.close()


def _same(q: SqlQueue, ref: Queue, rng: random.Random) -> None:
    assert len(q.units) == len(ref.units)
    assert list(q.units) == ref.units
    assert q.units[1:4] == ref.units[1:4]
    assert list(q.items) == list(ref.items)
    assert dict(q.items) == ref.items
    assert dict(q.unit_of) == ref.unit_of
    assert list(q.by_sha) == list(ref.by_sha) and dict(q.by_sha) == ref.by_sha
    assert (q.known_items, q.known_by_category) == (ref.known_items, ref.known_by_category)
    assert q.items.get(-5) is None and "nope" not in q.by_sha
    everything = list(ref.by_sha)
    for _ in range(25):
        decided = set(rng.sample(everything, rng.randint(0, len(everything))))
        decided |= {"0" * 64}  # decided elsewhere, not in this queue
        if rng.random() < 0.2:
            decided |= set(everything)
        for u in ref.units:
            assert q.remaining(u, decided) == ref.remaining(u, decided)
        for start in range(-1, len(ref.units) + 1):
            for step in (1, -1):
                assert q.next_open(start, decided, step) == \
                    ref.next_open(start, decided, step), (start, step)
        assert q.open_units(decided) == ref.open_units(decided)
        assert q.decided_count(decided) == ref.decided_count(decided)


@pytest.mark.parametrize("seed", range(6))
def test_the_sql_queue_equals_the_plain_queue_on_generated_scans(tmp_path: Path,
                                                                 seed: int) -> None:
    _generated(tmp_path / "scan", seed)
    store = ReviewStore(tmp_path / "scan" / "scan.db")
    ref = build_queue(store.conn)
    assert any(u.kind == "group" for u in ref.units) and any(
        u.kind == "item" for u in ref.units)
    _same(SqlQueue(store.conn, store.lock), ref, random.Random(seed))
    store.close()


def test_the_sql_queue_equals_the_plain_queue_on_the_demo_scan(case: Case) -> None:
    store = ReviewStore(case.scan / "scan.db")
    ref = build_queue(store.conn)
    q = SqlQueue(store.conn, store.lock)
    _same(q, ref, random.Random(1))
    # opened twice on one connection (a second session): built afresh, the same
    assert list(SqlQueue(store.conn, store.lock).units) == ref.units
    store.close()


def test_the_sql_queue_reads_steps_far_apart(tmp_path: Path) -> None:
    """Pages of steps grow as ``next_open`` passes decided ones: the answer is the one
    open step, wherever it is."""
    folder = tmp_path / "scan"
    folder.mkdir()
    db = ScanDB(folder / "scan.db")
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3000)]
    db.add_pending([(f"f{i}.jpg", None, 1, None) for i in range(3000)])
    db.record([{"path": f"f{i}.jpg", "status": "done", "kind": "image", "sha256": s}
               for i, s in enumerate(shas)])
    db.close()
    store = ReviewStore(folder / "scan.db")
    q = SqlQueue(store.conn, store.lock)
    assert len(q.units) == 3000
    for open_pos in (0, 1, 63, 64, 65, 1500, 2999):
        decided = set(shas) - {shas[open_pos]}
        assert q.next_open(0, decided) == open_pos
        assert q.next_open(2999, decided, -1) == open_pos
        assert q.open_units(decided) == 1
    assert q.next_open(0, set(shas)) is None
    store.close()
