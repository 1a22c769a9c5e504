"""The queue (ranked as the report ranks, known material out, decided items never shown
again) and the decisions in scan.db (durable, undoable, never overwritten)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.review.conftest import Case
from vigil.review.queue import build_queue
from vigil.review.store import AlreadyDecided, ReviewStore, ReviewStoreError
from vigil.triage.scandb import ScanDB


def test_queue_is_the_reports_groups_then_single_items_and_no_known(case: Case) -> None:
    store = ReviewStore(case.scan / "scan.db")
    q = build_queue(store.conn)
    db = ScanDB(case.scan / "scan.db")
    groups = db.groups()
    s = db.summary()
    db.close()
    # the groups in the report's order, then the single items
    assert [u.group_id for u in q.units if u.kind == "group"] == [g.id for g in groups]
    names = [sorted(q.items[i].name for i in u.items) for u in q.units]
    assert names[0] == sorted(case.groups["A"])
    assert names[1] == sorted(case.groups["B"])
    singles = [q.items[u.items[0]].name for u in q.units if u.kind == "item"]
    assert set(singles) == {"c.jpg", "d.jpg", "clip.mp4"}
    # known material: counts only, never in the queue
    all_names = {it.name for it in q.items.values()}
    assert not all_names & {"k1-copy.jpg", "k2-small.jpg", "notes.txt"}
    assert q.known_items == s.known_items == 2
    assert q.known_by_category == {"us:1": 2}
    store.close()


def test_decided_items_are_never_shown_again_and_undo_brings_them_back(case: Case) -> None:
    store = ReviewStore(case.scan / "scan.db")
    q = build_queue(store.conn)
    first = q.units[0]
    shas = [q.items[i].sha256 for i in first.items]
    aid = store.decide("r1", shas[:1], "category", "us", "1", {"pos": 0})
    assert q.remaining(first, store.decided()) == list(first.items[1:])
    store.decide("r1", shas[1:], "category", "us", "2", {"pos": 0})
    assert q.remaining(first, store.decided()) == []
    assert q.next_open(0, store.decided()) == 1
    with pytest.raises(AlreadyDecided):
        store.decide("r2", shas[:1], "category", "us", "3", {})
    undone = store.undo("r1")
    assert undone is not None and undone[1] == shas[1:]
    assert q.remaining(first, store.decided()) == list(first.items[1:])
    assert store.last_category("r1", shas) == ("us", "1")
    assert store.action(aid) is not None
    store.close()


def test_a_decision_is_on_disk_when_decide_returns(case: Case) -> None:
    """Another connection (another process after a crash) sees it at once."""
    store = ReviewStore(case.scan / "scan.db")
    q = build_queue(store.conn)
    sha = q.items[q.units[0].items[0]].sha256
    store.decide("r1", [sha], "not_relevant", None, None, {})
    other = sqlite3.connect(case.scan / "scan.db")
    rows = other.execute("SELECT kind, live FROM review_decisions WHERE sha256 = ?",
                         (sha,)).fetchall()
    other.close()
    assert rows == [("not_relevant", 1)]
    store.close()


def test_series_links_and_new_series(case: Case) -> None:
    store = ReviewStore(case.scan / "scan.db")
    q = build_queue(store.conn)
    shas = [q.items[i].sha256 for i in q.units[1].items]
    store.link_series("r1", shas, "SG-2026-01", True, {})
    assert store.new_series() == ["SG-2026-01"]
    assert store.series_of() == {s: "SG-2026-01" for s in shas}
    store.undo("r1")
    assert store.new_series() == [] and store.series_of() == {}
    with pytest.raises(ReviewStoreError):
        store.decide("r1", [], "category", "us", "1", {})
    store.close()


def test_review_tables_of_another_version_are_refused(case: Case) -> None:
    store = ReviewStore(case.scan / "scan.db")
    store.close()
    conn = sqlite3.connect(case.scan / "scan.db")
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'review_schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ReviewStoreError, match="version 99"):
        ReviewStore(case.scan / "scan.db")


def test_open_units_counted_from_the_decided_side_equals_the_plain_count(case: Case) -> None:
    store = ReviewStore(case.scan / "scan.db")
    q = build_queue(store.conn)

    def reference(decided: set[str]) -> int:
        return sum(1 for u in q.units if q.remaining(u, decided))

    assert q.open_units(set()) == reference(set()) == len(q.units)
    shas = [q.items[i].sha256 for u in q.units for i in u.items]
    for k in range(len(shas) + 1):
        part = set(shas[:k]) | {"not-in-the-queue"}
        assert q.open_units(part) == reference(part)
        assert q.decided_count(part) == k
    store.close()


def test_number_keys_follow_the_scheme() -> None:
    from vigil.review.service import scheme_keys

    assert [(k, v) for k, v, _ in scheme_keys("us")] == [(str(i), str(i)) for i in range(6)]
    assert [(k, v) for k, v, _ in scheme_keys("uk")] == [("1", "A"), ("2", "B"), ("3", "C")]
    assert [v for _, v, _ in scheme_keys("ncmec")] == ["A1", "A2", "B1", "B2"]
    assert [(k, v) for k, v, _ in scheme_keys("interpol")] == [("1", "yes"), ("2", "no")]
