"""Video matching: the indexed scorer must equal brute-force scoring, exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.index.video import (
    VideoIndex,
    _min_count,
    _probe_rows,
    brute_force_score,
    brute_force_search,
    merge_ranges,
    prepare,
)
from vigil.signals.vpdq import VpdqFrame


def _hex(code: np.ndarray) -> str:
    return code.tobytes().hex()


def _flip(rng: np.random.Generator, code: np.ndarray, bits: int) -> np.ndarray:
    out = code.copy()
    for b in rng.choice(256, bits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def _video(
    codes: list[np.ndarray], rng: np.random.Generator, low_q: float = 0.1
) -> list[VpdqFrame]:
    """Frames at 1 fps; a share of them below quality 50 (ignored by matching)."""
    return [
        VpdqFrame(30 * i, int(rng.integers(0, 50) if rng.random() < low_q else 100), _hex(c), i)
        for i, c in enumerate(codes)
    ]


def _bank(kind: str, rng: np.random.Generator, n_videos: int, n_frames: int) -> dict:
    """Random codes, or clustered: videos built from a few shared scenes (near-duplicate
    frames across videos), shared intros and repeated (identical) frames."""
    bank: dict[int, list[VpdqFrame]] = {}
    scenes = rng.integers(0, 256, (12, 32), dtype=np.uint8)
    intro = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(3)]
    for v in range(n_videos):
        n = int(rng.integers(1, n_frames + 1))
        if kind == "random":
            codes = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(n)]
        else:
            codes = [_flip(rng, c, int(rng.integers(0, 6))) for c in intro] if v % 3 == 0 else []
            while len(codes) < n:
                scene = scenes[rng.integers(0, len(scenes))]
                for _ in range(int(rng.integers(1, 6))):
                    codes.append(_flip(rng, scene, int(rng.integers(0, 40))))
                    if rng.random() < 0.2:
                        codes.append(codes[-1])  # an exact repeat
        bank[1000 + 7 * v] = _video(codes[:n], rng)
    return bank


def _queries(bank: dict, rng: np.random.Generator, n: int) -> list[list[VpdqFrame]]:
    """Perturbed copies, clips, compilations and unrelated videos."""
    ids = list(bank)
    out = []
    for k in range(n):
        src = [
            np.frombuffer(bytes.fromhex(f.pdq), np.uint8) for f in bank[ids[rng.integers(len(ids))]]
        ]
        kind = k % 4
        if kind == 0:  # re-encode: a few bits per frame, some frames replaced
            codes = [
                _flip(rng, c, int(rng.integers(0, 12))) if rng.random() < 0.85
                else rng.integers(0, 256, 32, dtype=np.uint8)
                for c in src
            ]  # fmt: skip
        elif kind == 1:  # a clip
            a = int(rng.integers(0, len(src)))
            codes = [_flip(rng, c, 3) for c in src[a : a + int(rng.integers(1, 10))]]
        elif kind == 2:  # compilation: clip + unrelated material + another video
            other = bank[ids[rng.integers(len(ids))]]
            codes = src[: len(src) // 2] + [
                rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(5)
            ]
            codes += [np.frombuffer(bytes.fromhex(f.pdq), np.uint8) for f in other]
        else:
            codes = [
                rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(int(rng.integers(1, 30)))
            ]
        out.append(_video(codes, rng, low_q=0.05))
    return out


THRESHOLDS = [(80.0, 0.0), (0.0, 0.0), (50.0, 80.0), (0.0, 90.0), (100.0, 0.0), (33.3, 0.0)]


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_indexed_search_equals_brute_force(kind: str) -> None:
    rng = np.random.default_rng(11 if kind == "random" else 12)
    bank = _bank(kind, rng, 120, 40)
    index = VideoIndex()
    for vid, frames in bank.items():
        index.add(vid, frames)
    queries = _queries(bank, rng, 40)
    prepared = {vid: prepare(frames) for vid, frames in bank.items()}
    checked = matched = 0
    for distance in (31, 10):
        every = [
            brute_force_search(q, prepared, distance=distance, min_query_pct=0) for q in queries
        ]
        for qmin, cmin in THRESHOLDS:
            got = index.search_many(
                queries, distance=distance, min_query_pct=qmin, min_compared_pct=cmin
            )
            for g, all_hits in zip(got, every, strict=True):
                want = [m for m in all_hits if m.score.is_match(qmin, cmin)]
                assert g == want, (kind, qmin, cmin, distance)
                checked += 1
                matched += len(want)
    assert matched > 100, matched  # the comparison is not vacuous
    assert checked == len(THRESHOLDS) * 2 * 40


def test_scores_equal_the_pairwise_reference_and_remove() -> None:
    rng = np.random.default_rng(3)
    bank = _bank("clustered", rng, 30, 25)
    index = VideoIndex()
    for vid, frames in bank.items():
        index.add(vid, frames)
    index.compact()
    query = next(iter(bank.values()))
    for m in index.search(query, min_query_pct=0.0):
        ref = brute_force_score(query, bank[m.video_id])
        assert m.score == ref
    first = next(iter(bank))
    assert any(m.video_id == first for m in index.search(query))
    assert index.remove(first) and not index.remove(first) and first not in index
    assert all(m.video_id != first for m in index.search(query, min_query_pct=0.0))
    with pytest.raises(ValueError):
        index.add(next(iter(index._slot)), query)


def test_meta_semantics_dedupe_quality_and_inclusive_distance() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, 32, dtype=np.uint8)
    b = rng.integers(0, 256, 32, dtype=np.uint8)
    a31 = _flip(rng, a, 31)
    a32 = _flip(rng, a, 32)
    query = [
        VpdqFrame(0, 100, _hex(a), 0.0),
        VpdqFrame(1, 100, _hex(a), 1.0),  # duplicate hash: counted once
        VpdqFrame(2, 100, _hex(b), 2.0),
        VpdqFrame(3, 10, _hex(b ^ 0xFF), 3.0),  # low quality: ignored
    ]
    s = brute_force_score(query, [VpdqFrame(0, 60, _hex(a31), 0.0)])
    assert (s.query_matched, s.query_frames, s.compared_matched, s.compared_frames) == (1, 2, 1, 1)
    assert s.query_pct == 50.0 and s.compared_pct == 100.0
    s = brute_force_score(query, [VpdqFrame(0, 60, _hex(a32), 0.0)])
    assert s.query_matched == 0 and not s.is_match(0, 0)
    assert brute_force_score([], query).query_pct == 0.0


def test_matched_time_ranges() -> None:
    t = np.arange(10, dtype=float)
    hit = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 1], bool)
    assert merge_ranges(t, hit, 1.5) == [(0.0, 2.0), (4.0, 5.0), (8.0, 9.0)]
    gappy = np.array([0.0, 1.0, 2.0, 10.0, 11.0])
    assert merge_ranges(gappy, np.ones(5, bool), 1.5) == [(0.0, 2.0), (10.0, 11.0)]
    rng = np.random.default_rng(9)
    codes = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(20)]
    bank_video = _video(codes, rng, low_q=0.0)
    clip = [VpdqFrame(30 * i, 100, f.pdq, float(i)) for i, f in enumerate(bank_video[5:12])]
    index = VideoIndex()
    index.add(1, bank_video)
    (m,) = index.search(clip)
    assert m.query_ranges == [(0.0, 6.0)] and m.compared_ranges == [(5.0, 11.0)]
    assert m.score.query_pct == 100.0 and math.isclose(m.score.compared_pct, 35.0)


def test_pigeonhole_probe_count_is_exact() -> None:
    for m in range(1, 200):
        for pct in (0.0, 1.0, 33.3, 50.0, 79.9, 80.0, 80.1, 99.5, 100.0):
            k = _min_count(m, pct)
            assert k * 100.0 / m >= pct or k == m + 1
            assert k == 0 or (k - 1) * 100.0 / m < pct
            rows = _probe_rows(m, pct)
            if k > m:
                assert rows is None
            elif pct > 0:
                assert rows is not None and len(rows) >= m - max(k, 1) + 1
    assert _probe_rows(300, 80.0) is not None and len(_probe_rows(300, 80.0)) == 61  # type: ignore[arg-type]


def test_bulk_load_equals_one_by_one_and_is_all_or_nothing() -> None:
    rng = np.random.default_rng(21)
    bank = _bank("random", rng, 40, 30)
    one, bulk = VideoIndex(), VideoIndex()
    for vid, frames in bank.items():
        one.add(vid, frames)
    bulk.add_many(bank.items())
    queries = _queries(bank, rng, 12)
    assert one.search_many(queries, min_query_pct=0) == bulk.search_many(queries, min_query_pct=0)
    before = len(bulk.index)
    with pytest.raises(ValueError):
        bulk.add_many([(1, bank[1000]), (2, bank[1007]), (1, bank[1014])])
    assert len(bulk) == 40 and len(bulk.index) == before and 2 not in bulk
