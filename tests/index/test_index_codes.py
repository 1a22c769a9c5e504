"""Hex parsing is strict and round-trips; the Numba scan equals the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.index.index_gen import KINDS, make_codes, make_queries, same
from vigil.index import BruteForceIndex, SearchResult, codes_from_hex, hamming, hex_from_codes
from vigil.index import _kernels as k
from vigil.index._bits import as_words


def test_hex_round_trip_and_byte_order() -> None:
    hexes = ["00" * 31 + "ff", "0F" + "a5" * 31]
    codes = codes_from_hex(hexes)
    assert codes.shape == (2, 32) and codes.dtype == np.uint8
    assert codes[0, 31] == 0xFF and codes[1, 0] == 0x0F
    assert hex_from_codes(codes) == [hexes[0], hexes[1].lower()]
    assert codes_from_hex(iter(hexes)).shape == (2, 32)
    assert codes_from_hex([]).shape == (0, 32)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("ab" * 31, "position 1 has 62 characters"),
        ("zz" * 32, "position 1 is not hexadecimal"),
        ("a " * 32, "position 1 is not hexadecimal"),
        (12, "position 1 is not a str"),
    ],
)
def test_hex_errors_name_position(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codes_from_hex(["00" * 32, bad, "11" * 32])  # type: ignore[list-item]


def test_hamming() -> None:
    assert hamming("00" * 32, "00" * 32) == 0
    assert hamming("00" * 32, "ff" * 32) == 256
    assert hamming("01" + "00" * 31, "03" + "00" * 31) == 1
    with pytest.raises(ValueError):
        hamming("00", "00" * 32)


def test_search_result_accessors() -> None:
    res = SearchResult.from_hits(
        3, np.array([2, 0, 2, 2]), np.array([5, 1, 4, 9]), np.array([3, 0, 3, 1])
    )
    assert len(res) == 3
    assert res.matches(0) == [(1, 0)] and res.count(1) == 0
    assert res.matches(2) == [(9, 1), (4, 3), (5, 3)]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(KINDS),
    n=st.integers(0, 1500),
    radius=st.sampled_from([0, 1, 31, 32, 64, 200, 256]),
)
def test_numba_scan_equals_numpy_reference(seed: int, kind: str, n: int, radius: int) -> None:
    rng = np.random.default_rng(seed)
    codes = make_codes(kind, n, rng)
    queries = make_queries(codes, 9, rng)
    alive = (rng.random(n) < 0.9).astype(np.uint8)
    hq, hr, hd = k.scan(as_words(codes), alive, as_words(queries), radius)
    got = SearchResult.from_hits(len(queries), hq, hr, hd)
    ref = BruteForceIndex()
    keep = np.flatnonzero(alive)
    ref.add(codes[keep], keep)
    assert same(got, ref.search(queries, radius))


def test_flip_masks_cover_each_ball_once() -> None:
    masks, upto = k.flip_masks(10, 3)
    assert list(upto) == [1, 11, 56, 176]
    assert len(set(masks.tolist())) == len(masks)
    pops = np.bitwise_count(masks)
    assert np.all(np.diff(pops) >= 0) and pops.max() == 3 and masks.max() < 1024
