"""ExactIndex: exact-digest lookup for MD5 (16 bytes), SHA-1 (20) and SHA-256 (32).

A Python dict of 10M digests costs well over 100 bytes per entry; here entries live in
sorted NumPy arrays (digest + an 8-byte sort key + id + a small id map, about k + 29 bytes
each) that memory-map like the Hamming index. Same base + delta + tombstones scheme, so adds
and removals never re-sort the whole base.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vigil.index._ids import as_ids, check_unique, sorted_member
from vigil.index._store import load_array, read_manifest, write_index_dir
from vigil.index.arrays import Alive, Digests, Flags, Ids, Positions
from vigil.index.codes import parse_hex_rows
from vigil.index.result import SearchResult

FORMAT = "vigil.exact-index"
VERSION = 1
#: the exact-digest signal types and their sizes in bytes
DIGEST_SIZES: dict[str, int] = {"md5": 16, "sha1": 20, "sha256": 32}


def digests_from_hex(hexes: Iterable[str], digest_size: int) -> Digests:
    """Parse hex digests of ``digest_size`` bytes into an ``(N, digest_size) uint8`` array."""
    return parse_hex_rows(hexes, digest_size)


def _keys(digests: Digests) -> NDArray[np.uint64]:
    """The first 8 bytes as a big-endian integer: sorting by it is sorting by prefix."""
    return np.ascontiguousarray(digests[:, :8]).view(">u8").reshape(-1).astype(np.uint64)


@dataclass
class _Sorted:
    """Digests sorted by key, their ids, a tombstone mask and an id -> row map."""

    digests: Digests
    keys: NDArray[np.uint64]
    ids: Ids
    alive: Alive
    id_sorted: Ids  # ids in increasing order
    id_rows: NDArray[np.uint32 | np.int64]  # row of each id_sorted entry

    @classmethod
    def build(cls, digests: Digests, ids: Ids) -> _Sorted:
        keys = _keys(digests)
        order = np.argsort(keys, kind="stable")
        ids = ids[order]
        by_id = np.argsort(ids, kind="stable")
        return cls(
            np.ascontiguousarray(digests[order]),
            keys[order],
            ids,
            np.ones(len(ids), np.uint8),
            ids[by_id],
            by_id.astype(np.uint32 if len(ids) < 2**32 else np.int64),
        )

    @property
    def n_alive(self) -> int:
        return int(np.count_nonzero(self.alive))

    def rows_of(self, ids: Ids) -> Positions:
        """Live rows holding any of ``ids``."""
        found, pos = sorted_member(self.id_sorted, ids)
        rows = np.asarray(self.id_rows)[pos[found]].astype(np.int64)
        live: Flags = self.alive[rows] == 1
        return rows[live]

    def lookup(self, queries: Digests) -> tuple[Positions, Ids]:
        """(query index, id) for every live entry whose digest equals a query digest."""
        if len(self.keys) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        qk = _keys(queries)
        lo = np.searchsorted(self.keys, qk, side="left")
        hi = np.searchsorted(self.keys, qk, side="right")
        counts = hi - lo
        qidx = np.repeat(np.arange(len(queries)), counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        pos = starts + np.arange(len(qidx))
        ok = np.all(np.asarray(self.digests)[pos] == queries[qidx], axis=1) & (self.alive[pos] == 1)
        return qidx[ok], np.asarray(self.ids)[pos[ok]]


class ExactIndex:
    """Exact lookup of fixed-size digests -> ids (several ids may share one digest)."""

    def __init__(self, digest_size: int, delta_limit: int | None = None) -> None:
        if digest_size not in DIGEST_SIZES.values():
            sizes = sorted(DIGEST_SIZES.values())
            raise ValueError(f"digest_size must be one of {sizes}, got {digest_size}")
        self.digest_size = digest_size
        self.delta_limit = delta_limit
        self._base = self._empty()
        self._delta = self._empty()

    def _empty(self) -> _Sorted:
        return _Sorted.build(np.zeros((0, self.digest_size), np.uint8), np.zeros(0, np.int64))

    def _check(self, digests: Digests | Sequence[bytes]) -> Digests:
        if isinstance(digests, np.ndarray):
            arr = digests
        else:
            items = list(digests)
            for i, d in enumerate(items):
                if not isinstance(d, bytes | bytearray) or len(d) != self.digest_size:
                    raise ValueError(
                        f"digest at position {i} is not {self.digest_size} bytes "
                        f"({type(d).__name__} of length {len(d) if hasattr(d, '__len__') else '?'})"
                    )
            arr = np.frombuffer(b"".join(items), np.uint8).reshape(len(items), self.digest_size)
        if arr.ndim != 2 or arr.shape[1] != self.digest_size or arr.dtype != np.uint8:
            raise ValueError(
                f"digests must be ({'N'}, {self.digest_size}) uint8, got {arr.dtype} {arr.shape}"
            )
        return arr

    def __len__(self) -> int:
        return self._base.n_alive + self._delta.n_alive

    def pending(self) -> int:
        """Digests in the delta, not yet folded into the sorted base."""
        return len(self._delta.ids)

    def _limit(self) -> int:
        if self.delta_limit is not None:
            return self.delta_limit
        return max(50_000, len(self._base.ids) // 64)

    def add(self, digests: Digests | Sequence[bytes], ids: Ids) -> None:
        """Add digests under new unique ids (a duplicate id raises ValueError naming it)."""
        arr = self._check(digests)
        ids = as_ids(ids, len(arr))
        check_unique(ids)
        clash = np.zeros(len(ids), bool)
        for part in (self._base, self._delta):
            if len(part.ids):
                found, pos = sorted_member(part.id_sorted, ids)
                rows = np.asarray(part.id_rows)[pos].astype(np.int64)
                clash |= found & (part.alive[rows] == 1)
        if clash.any():
            raise ValueError(f"id {int(ids[np.argmax(clash)])} is already in the index")
        d = self._delta
        live = d.alive == 1
        self._delta = _Sorted.build(
            np.concatenate([np.asarray(d.digests)[live], arr]), np.concatenate([d.ids[live], ids])
        )
        if len(self._delta.ids) > self._limit():
            self.compact()

    def remove(self, ids: Ids) -> int:
        """Remove ids (unknown ones ignored); returns how many were removed."""
        ids = np.unique(as_ids(ids))
        removed = 0
        for part in (self._base, self._delta):
            rows = part.rows_of(ids)
            part.alive[rows] = 0
            removed += len(rows)
        dead = len(self._base.ids) - self._base.n_alive
        if dead > max(self._limit(), len(self._base.ids) // 4):
            self.compact()
        return removed

    def compact(self) -> None:
        """Merge delta into base and drop tombstones."""
        if len(self._delta.ids) == 0 and self._base.n_alive == len(self._base.ids):
            return
        parts = [p for p in (self._base, self._delta) if len(p.ids)]
        keep = [p.alive == 1 for p in parts]
        digests = [np.asarray(p.digests)[m] for p, m in zip(parts, keep, strict=True)]
        ids = [np.asarray(p.ids)[m] for p, m in zip(parts, keep, strict=True)]
        if parts:
            self._base = _Sorted.build(np.concatenate(digests), np.concatenate(ids))
        self._delta = self._empty()

    def lookup(self, digests: Digests | Sequence[bytes]) -> SearchResult:
        """Ids stored under each query digest; all distances are 0 (same shape as search)."""
        arr = self._check(digests)
        qs, found = [], []
        for part in (self._base, self._delta):
            q, i = part.lookup(arr)
            qs.append(q)
            found.append(i)
        q = np.concatenate(qs)
        hits = np.concatenate(found)
        return SearchResult.from_hits(len(arr), q, hits, np.zeros(len(q), np.int32))

    def save(self, path: str | Path) -> None:
        """Write ``.npy`` arrays + a versioned manifest; the delta is folded in first."""
        self.compact()
        b = self._base
        write_index_dir(
            path,
            {
                "format": FORMAT,
                "version": VERSION,
                "digest_size": self.digest_size,
                "size": len(self),
            },
            {
                "digests": b.digests,
                "keys": b.keys,
                "ids": b.ids,
                "id_sorted": b.id_sorted,
                "id_rows": b.id_rows,
            },
        )

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> ExactIndex:
        """Open a saved index, memory-mapped by default."""
        manifest = read_manifest(path, FORMAT, VERSION)
        index = cls(int(manifest["digest_size"]))
        names = ("digests", "keys", "ids", "id_sorted", "id_rows")
        arrays = {n: np.asarray(load_array(path, n, mmap)) for n in names}
        index._base = _Sorted(
            arrays["digests"], arrays["keys"], arrays["ids"],
            np.ones(len(arrays["ids"]), np.uint8), arrays["id_sorted"], arrays["id_rows"],
        )  # fmt: skip
        return index
