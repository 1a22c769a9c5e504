"""HammingIndex must equal BruteForceIndex exactly, whatever the data and history."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.index.index_gen import KINDS, make_codes, make_queries, same
from vigil.index import BruteForceIndex, HammingIndex, SearchResult
from vigil.index.plan import Layout

RADII = (0, 1, 31, 32, 64)
LAYOUTS = (None, Layout(16, 8), Layout(12, 12), Layout(8, 16), Layout(21, 12), Layout(32, 8))
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _index(strategy: str, layout_i: int, delta_limit: int | None = None) -> HammingIndex:
    return HammingIndex(strategy=strategy, layout=LAYOUTS[layout_i], delta_limit=delta_limit)  # type: ignore[arg-type]


def _check(h: HammingIndex, ref: BruteForceIndex, queries: np.ndarray) -> None:
    assert len(h) == len(ref)
    for r in RADII:
        assert same(h.search(queries, r), ref.search(queries, r)), f"radius {r}"


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(KINDS),
    n=st.integers(0, 400),
    strategy=st.sampled_from(["auto", "tables", "scan"]),
    layout_i=st.integers(0, len(LAYOUTS) - 1),
)
def test_static_matches_reference(
    seed: int, kind: str, n: int, strategy: str, layout_i: int
) -> None:
    rng = np.random.default_rng(seed)
    codes = make_codes(kind, n, rng)
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    ref = BruteForceIndex()
    ref.add(codes, ids)
    h = _index(strategy, layout_i)
    h.add(codes, ids)
    h.compact()
    _check(h, ref, make_queries(codes, 24, rng))


OPS = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "compact", "reload"]), st.integers(0, 120)),
    min_size=1,
    max_size=7,
)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(KINDS),
    ops=OPS,
    strategy=st.sampled_from(["auto", "tables"]),
    layout_i=st.integers(0, len(LAYOUTS) - 1),
    delta_limit=st.sampled_from([None, 0, 50]),
)
def test_interleaved_history_matches_reference(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    kind: str,
    ops: list[tuple[str, int]],
    strategy: str,
    layout_i: int,
    delta_limit: int | None,
) -> None:
    rng = np.random.default_rng(seed)
    pool = make_codes(kind, 600, rng)
    next_id = 0
    ref = BruteForceIndex()
    h = _index(strategy, layout_i, delta_limit)
    for op, amount in ops:
        if op == "add":
            rows = rng.integers(0, len(pool), size=amount)
            ids = np.arange(next_id, next_id + amount, dtype=np.int64) * 7 - 300
            next_id += amount
            ref.add(pool[rows], ids)
            h.add(pool[rows], ids)
        elif op == "remove":
            known = np.concatenate([ref._ids, np.array([-(10**9), 10**9])])
            victims = rng.choice(known, size=min(amount, len(known)), replace=False)
            assert h.remove(victims) == ref.remove(victims)
        elif op == "compact":
            h.compact()
        else:
            path = tmp_path_factory.mktemp("idx")
            h.save(path / "ix")
            h = HammingIndex.load(path / "ix", mmap=bool(amount % 2))
        _check(h, ref, make_queries(pool, 16, rng))


def test_readd_after_remove_and_duplicates() -> None:
    rng = np.random.default_rng(0)
    codes = make_codes("random", 50, rng)
    h = HammingIndex(strategy="tables")
    h.add(codes, np.arange(50))
    h.compact()
    with pytest.raises(ValueError, match="id 7 "):
        h.add(codes[:1], np.array([7]))
    with pytest.raises(ValueError, match="id 100 occurs more than once"):
        h.add(codes[:2], np.array([100, 100]))
    with pytest.raises(ValueError, match="id 101 "):
        h.add(codes[:1], np.array([101]))
        h.add(codes[:1], np.array([101]))
    assert h.remove(np.array([7, 7, 999])) == 1
    assert h.remove(np.array([7])) == 0
    h.add(codes[:1], np.array([7]))  # an id may come back after removal
    assert h.search(codes[:1], 0).matches(0) == [(0, 0), (7, 0), (101, 0)]


def test_empty_index_and_empty_batch() -> None:
    h = HammingIndex()
    q = make_codes("random", 3, np.random.default_rng(1))
    res = h.search(q)
    assert len(res) == 3 and res.count(0) == 0 and res.matches(2) == []
    h.add(q, np.array([1, 2, 3]))
    empty = h.search(np.zeros((0, 32), np.uint8))
    assert isinstance(empty, SearchResult) and len(empty) == 0
    assert list(empty.offsets) == [0]
    assert h.remove(np.array([], dtype=np.int64)) == 0


@pytest.mark.parametrize("cls", [HammingIndex, BruteForceIndex])
def test_radius_and_shape_validation(cls: type) -> None:
    h = cls()
    q = np.zeros((1, 32), np.uint8)
    for bad in (-1, 257, 1.5):
        with pytest.raises(ValueError, match="radius"):
            h.search(q, bad)
    h.search(q, 256)
    with pytest.raises(ValueError):
        h.search(np.zeros((1, 31), np.uint8))
    with pytest.raises(ValueError):
        h.add(np.zeros((2, 32), np.int64), np.array([1, 2]))
    with pytest.raises(ValueError):
        h.add(np.zeros((2, 32), np.uint8), np.array([1]))


def test_load_rejects_foreign_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = BruteForceIndex()
    b.save(tmp_path / "b")
    with pytest.raises(ValueError, match="format"):
        HammingIndex.load(tmp_path / "b")
    with pytest.raises(FileNotFoundError):
        HammingIndex.load(tmp_path / "nothing")


def _saved(path, n: int, seed: int):  # type: ignore[no-untyped-def]
    """A compacted multi-index of ``n`` clustered codes saved at ``path``: (codes, index, rng)."""
    rng = np.random.default_rng(seed)
    codes = make_codes("clustered", n, rng)
    h = HammingIndex(strategy="tables")
    h.add(codes, np.arange(n))
    h.compact()
    h.save(path)
    return codes, h, rng


def test_save_over_itself_while_mapped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    codes, _, rng = _saved(tmp_path / "ix", 300, 3)
    h2 = HammingIndex.load(tmp_path / "ix")
    h2.remove(np.arange(0, 300, 3))
    h2.add(codes[:5], np.arange(1000, 1005))
    h2.save(tmp_path / "ix")  # replaces the files it is mapped from
    h3 = HammingIndex.load(tmp_path / "ix")
    q = make_queries(codes, 10, rng)
    assert same(h2.search(q, 40), h3.search(q, 40))
    assert len(h3) == 205


def test_thousands_of_near_codes_for_one_query_match_the_reference() -> None:
    """One query with thousands of codes within its radius (some removed): the kernel's
    list of near candidates grows many times over and every hit is still reported once."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    bits = np.unpackbits(np.repeat(base, 5000, axis=0), axis=1)
    for r in range(5000):
        bits[r, rng.choice(256, int(rng.integers(0, 40)), replace=False)] ^= 1
    codes = np.vstack([np.packbits(bits, axis=1),
                       rng.integers(0, 256, (20000, 32), dtype=np.uint8)])
    h = HammingIndex(strategy="tables")
    b = BruteForceIndex()
    for ix in (h, b):
        ix.add(codes, np.arange(len(codes)))
    h.compact()
    for ix in (h, b):
        ix.remove(np.arange(0, 3000, 7))
    got, want = h.search(base, 31), b.search(base, 31)
    assert got.count(0) > 3000
    assert same(got, want)


def test_big_files_dropped_from_the_cache_and_mapped_huge_read_back_the_same(
        tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The huge-page path (flush, fsync, drop from the page cache, MADV_HUGEPAGE on the
    mapping) changes how the files are cached and mapped, never what is read."""
    from vigil.index import _store

    monkeypatch.setattr(_store, "DROP_CACHE_BYTES", 1)  # every array takes that path
    dropped = []
    real = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, *a: (dropped.append(fd), real(fd, *a))[1])
    codes, h, rng = _saved(tmp_path / "ix", 2000, 5)
    assert dropped, "written files were dropped from the page cache"
    h2 = HammingIndex.load(tmp_path / "ix")
    q = make_queries(codes, 50, rng)
    assert same(h.search(q, 31), h2.search(q, 31))


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(KINDS),
    n=st.integers(1, 3000),
    nq=st.integers(128, 700),
    threads=st.integers(2, 5),
    strategy=st.sampled_from(["tables", "scan"]),
)
def test_a_batch_split_over_threads_equals_one_call_and_the_reference(
    seed: int, kind: str, n: int, nq: int, threads: int, strategy: str
) -> None:
    """Big batches are searched in slices on several threads: same result as one thread,
    and as brute force, whatever the slice boundaries."""
    rng = np.random.default_rng(seed)
    codes = make_codes(kind, n, rng)
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    h = HammingIndex(strategy=strategy)  # type: ignore[arg-type]
    h.add(codes, ids)
    h.compact()
    extra = make_codes("random", 5, rng)
    h.add(extra, np.arange(10**12, 10**12 + 5))  # and a delta
    ref = BruteForceIndex()
    ref.add(codes, ids)
    ref.add(extra, np.arange(10**12, 10**12 + 5))
    queries = make_queries(codes, nq, rng)
    for r in (0, 31, 64):
        one = h.search(queries, r, threads=1)
        assert same(h.search(queries, r, threads=threads), one), f"radius {r}"
        assert same(one, ref.search(queries, r)), f"radius {r}"

