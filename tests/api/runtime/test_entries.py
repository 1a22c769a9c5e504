"""The worker's entry cache: what it keeps, what it drops, and what a match shows after
a relabel or a removal (over HTTP: within the index's sync interval, never stale)."""

from __future__ import annotations

import threading

import httpx

from tests.api.conftest import Node, wait_for
from vigil.api.runtime.entries import EntryCache
from vigil.banks import StoredEntry
from vigil.banks.entry import Labels


def _entry(i: int, signal_type: str = "pdq", note: str = "") -> StoredEntry:
    return StoredEntry(i, "b", "SG-SPF", signal_type, f"{i:064x}", None, Labels(note=note),
                       "SG-SPF", None, None, i, False, {})


def test_keeps_indexed_types_and_evicts_the_least_recently_used() -> None:
    c = EntryCache(max_size=3)
    c.put_many([_entry(1), _entry(2), _entry(3), _entry(4, "vpdq")], c.generation)
    assert len(c) == 3  # vpdq is not tailed by the index: never cached
    c.get_many([1])  # 1 is now the most recent
    c.put_many([_entry(5)], c.generation)
    found, missing = c.get_many([1, 2, 3, 5])
    assert sorted(found) == [1, 3, 5] and missing == [2]


def test_a_read_overtaken_by_a_change_is_not_kept() -> None:
    c = EntryCache()
    c.put_many([_entry(1, note="v1")], c.generation)
    gen = c.generation  # a request starts reading entry 2 ...
    c.drop([1])  # ... while the index tail sees a change
    c.put_many([_entry(2)], gen)  # ... and what it read (maybe stale) is not stored
    assert c.get_many([1, 2]) == ({}, [1, 2])
    c.put_many([_entry(2)], c.generation)
    c.drop(None)  # after a rebuild: everything goes
    assert len(c) == 0


def test_concurrent_use_stays_consistent() -> None:
    c = EntryCache(max_size=500)

    def work(k: int) -> None:
        for i in range(2000):
            e = _entry((i * 7 + k) % 1000)
            c.put_many([e], c.generation)
            found, _ = c.get_many([e.id])
            assert all(f.id == i for i, f in found.items())
            if i % 50 == 0:
                c.drop([e.id])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(c) <= 500


def test_relabel_and_removal_reach_matches_within_seconds(node: Node, bank: str) -> None:
    pdq = "f0e1d2c3b4a59687" * 4
    body = {"signals": [{"type": "pdq", "value": pdq}]}
    with node.client("curator") as cur, node.client("analyst") as ana:
        r = cur.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "pdq", "value": pdq, "category": "us:1", "note": "first"}]})
        assert r.status_code == 200, r.text

        def note() -> str | None:
            res = ana.post("/v1/match", json=body).json()["results"][0]["matches"]
            return res[0].get("note") if res else None

        wait_for(lambda: note() == "first", timeout=5)
        for _ in range(5):  # cached on the worker(s) now
            assert note() == "first"
        r = cur.patch(f"/v1/banks/{bank}/entries",
                     json={"signals": [{"type": "pdq", "value": pdq}],
                           "set": {"note": "second"}})
        assert r.status_code == 200, r.text
        wait_for(lambda: note() == "second", timeout=5)
        for _ in range(10):  # and never the old label again, on any worker
            assert note() == "second"
        r = cur.post(f"/v1/banks/{bank}/entries/remove",
                     json={"signals": [{"type": "pdq", "value": pdq}]})
        assert r.status_code == 200, r.text
        wait_for(lambda: note() is None, timeout=5)
        for _ in range(10):
            assert note() is None



def test_cached_only_refuses_store_reads_in_its_thread_and_block_only(engine) -> None:  # type: ignore[no-untyped-def]
    """What the lean match path relies on to keep store reads off the event loop."""
    import pytest

    from vigil.api.runtime.entries import CachedEntries, EntriesNotCached
    from vigil.banks import Banks, EntryReader
    from vigil.banks.entry import EntryRecord

    Banks(engine, user="t").create("a", "SG-SPF")
    Banks(engine, user="t").apply("a", [EntryRecord("pdq", f"{i:064x}", Labels(), 90)
                                        for i in (1, 2)])
    ids = sorted(e.id for e in EntryReader(engine).entries("a"))
    cache = EntryCache()
    banks = CachedEntries(EntryReader(engine), cache)
    with banks.cached_only():
        with pytest.raises(EntriesNotCached):
            banks.by_ids(ids)
        other: dict[int, StoredEntry] = {}
        t = threading.Thread(target=lambda: other.update(banks.by_ids(ids[:1])))
        t.start()
        t.join()
        assert sorted(other) == ids[:1], "another thread (the thread pool) reads the store"
        assert sorted(banks.by_ids(ids[:1])) == ids[:1], "cached by that read: no refusal"
        with pytest.raises(EntriesNotCached):
            banks.by_ids(ids)
    assert sorted(banks.by_ids(ids)) == ids, "outside the block: read through"
    with banks.cached_only():
        assert sorted(banks.by_ids(ids)) == ids


def test_a_hit_on_an_uncached_entry_is_matched_in_a_thread_the_same(node: Node,
                                                                     bank: str) -> None:
    """The lean path's answer does not depend on whether the entry was cached: the first
    match (a store read, in a thread) and the next one (from the cache) are the same."""
    import re

    value = "d" * 60 + "1234"
    with node.client("curator") as c:
        r = c.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "pdq", "value": value, "category": "us:1"}]})
        assert r.status_code in (200, 201), r.text
    body = {"signals": [{"type": "pdq", "value": value}]}

    def misses() -> float:
        text = httpx.get(f"{node.url}/metrics", timeout=10).text
        m = re.search(r"^vigil_match_fast_entry_misses_total ([0-9.e+]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    with node.client("analyst") as c:
        wait_for(lambda: c.post("/v1/match", json=body).json()["matched"] == 1, timeout=10)
        answers = [c.post("/v1/match", json=body).json() for _ in range(6)]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["results"][0]["matches"][0]["category"] == {"scheme": "us", "value": "1"}
    assert misses() >= 1, "the first hit of each worker was matched again in a thread"
