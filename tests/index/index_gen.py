"""Synthetic 256-bit codes for index tests: random, clustered, skewed, with duplicates.

Only generated random codes: no images and no real hash lists are needed to test matching.
"""

from __future__ import annotations

import numpy as np

KINDS = ("random", "clustered", "skewed", "dups")


def flip_bits(code: np.ndarray, n_bits: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``code`` (32 uint8) with exactly ``n_bits`` distinct bits flipped."""
    bits = np.unpackbits(code)
    where = rng.choice(256, size=n_bits, replace=False)
    bits[where] ^= 1
    return np.packbits(bits)


def make_codes(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` codes of the given kind as an (n, 32) uint8 array."""
    if n == 0:
        return np.zeros((0, 32), np.uint8)
    if kind == "random":
        return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    if kind == "skewed":
        p = np.full(256, 0.5)
        p[rng.choice(256, size=96, replace=False)] = 0.8
        p[rng.choice(256, size=32, replace=False)] = 0.05
        return np.packbits(rng.random((n, 256)) < p, axis=1)
    centres = rng.integers(0, 256, size=(max(1, n // 25), 32), dtype=np.uint8)
    out = np.empty((n, 32), np.uint8)
    for i in range(n):
        centre = centres[rng.integers(len(centres))]
        d = 0 if kind == "dups" and rng.random() < 0.5 else int(rng.integers(0, 41))
        out[i] = flip_bits(centre, d, rng)
    return out


def make_queries(stored: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Half near-duplicates of stored codes (0..40 bits away), half random codes."""
    out = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    if len(stored):
        for i in range(0, n, 2):
            out[i] = flip_bits(stored[rng.integers(len(stored))], int(rng.integers(0, 41)), rng)
    return out


def same(a, b) -> bool:  # type: ignore[no-untyped-def]
    """Two SearchResults are identical (offsets, ids and distances)."""
    return (
        np.array_equal(a.offsets, b.offsets)
        and np.array_equal(a.ids, b.ids)
        and np.array_equal(a.distances, b.distances)
        and a.ids.dtype == np.int64
        and a.distances.dtype == np.int32
        and a.offsets.dtype == np.int64
    )
