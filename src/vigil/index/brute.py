"""The reference Hamming index: pure NumPy, no cleverness, obviously correct.

Every optimised path in the engine is tested against this class (DESIGN.md: "the engine
... has a brute-force reference for every optimised path"). Keep it boring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.index._ids import as_ids, check_unique
from vigil.index._store import load_array, read_manifest, write_index_dir
from vigil.index.arrays import Codes, Ids
from vigil.index.codes import CODE_BYTES
from vigil.index.result import SearchResult

FORMAT = "vigil.bruteforce-index"
VERSION = 1
MAX_RADIUS = 256


def check_codes(codes: Codes) -> Codes:
    """Validate the public code layout: ``(N, 32) uint8``."""
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.shape[1] != CODE_BYTES or arr.dtype != np.uint8:
        raise ValueError(
            f"codes must be a (N, {CODE_BYTES}) uint8 array, got {arr.dtype} {arr.shape}"
        )
    return arr


def check_radius(radius: int) -> int:
    """Radius 0..256 is accepted (0..64 is the meaningful range for PDQ)."""
    r = int(radius)
    if r != radius or not 0 <= r <= MAX_RADIUS:
        raise ValueError(f"radius must be an integer in 0..{MAX_RADIUS}, got {radius!r}")
    return r


class BruteForceIndex:
    """Linear scan with XOR + popcount over every stored code."""

    def __init__(self) -> None:
        self._codes = np.zeros((0, CODE_BYTES), dtype=np.uint8)
        self._ids = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, codes: Codes, ids: Ids) -> None:
        """Append codes under new, unique ids."""
        codes = check_codes(codes)
        ids = as_ids(ids, len(codes))
        check_unique(ids)
        clash = np.isin(ids, self._ids)
        if clash.any():
            raise ValueError(f"id {int(ids[np.argmax(clash)])} is already in the index")
        self._codes = np.concatenate([self._codes, codes])
        self._ids = np.concatenate([self._ids, ids])

    def remove(self, ids: Ids) -> int:
        """Drop the given ids; unknown ids are ignored. Returns how many were removed."""
        gone = np.isin(self._ids, as_ids(ids))
        self._codes = self._codes[~gone]
        self._ids = self._ids[~gone]
        return int(gone.sum())

    def search(self, queries: Codes, radius: int = 31) -> SearchResult:
        """Every stored code within ``radius`` of each query, with exact distances."""
        queries = check_codes(queries)
        r = check_radius(radius)
        qs, hit_ids, dists = [], [], []
        for qi, query in enumerate(queries):
            d = np.bitwise_count(self._codes ^ query).sum(axis=1, dtype=np.int64)
            sel = np.flatnonzero(d <= r)
            qs.append(np.full(len(sel), qi, dtype=np.int64))
            hit_ids.append(self._ids[sel])
            dists.append(d[sel])
        if not qs:
            return SearchResult.empty(0)
        return SearchResult.from_hits(
            len(queries), np.concatenate(qs), np.concatenate(hit_ids), np.concatenate(dists)
        )

    def save(self, path: str | Path) -> None:
        """Write codes and ids as ``.npy`` files plus a versioned manifest (no pickle)."""
        write_index_dir(
            path,
            {"format": FORMAT, "version": VERSION, "size": len(self)},
            {"codes": self._codes, "ids": self._ids},
        )

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> BruteForceIndex:
        """Open a saved index, memory-mapped by default."""
        read_manifest(path, FORMAT, VERSION)
        index = cls()
        index._codes = load_array(path, "codes", mmap)
        index._ids = load_array(path, "ids", mmap)
        return index
