"""HammingIndex: the fast exact radius index for 256-bit codes.

Structure (why: adds and removals must not rebuild 10M-code tables, yet every search must
be exact at every moment):

* **base**: an immutable multi-index over rows sorted by id (so id -> row is a binary
  search, no extra map), plus a tombstone mask for removed rows;
* **delta**: a small array of recent additions, scanned linearly on every search;
* **compact()** folds the delta into a new base and drops tombstones; it runs by itself when
  the delta or the tombstones outgrow a threshold.

Not thread-safe for concurrent writers; concurrent searches on an unchanging index are fine
(kernels release the GIL).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from vigil.index import _kernels as k
from vigil.index._bits import as_words
from vigil.index._ids import as_ids, check_unique, sorted_member
from vigil.index._store import load_array, read_manifest, write_index_dir
from vigil.index.arrays import Alive, Codes, Distances, Flags, Ids, Positions, Words
from vigil.index.brute import check_codes, check_radius
from vigil.index.codes import CODE_BYTES
from vigil.index.plan import Layout, choose_layout, split_radius, use_tables
from vigil.index.result import SearchResult

FORMAT = "vigil.hamming-index"
VERSION = 1
Strategy = Literal["auto", "tables", "scan"]
_T = TypeVar("_T", bound=np.generic)


@lru_cache(maxsize=16)
def _masks(width: int, tmax: int) -> tuple[NDArray[np.uint64], Positions]:
    """The flip masks of one chunk width (``k.flip_masks``), made once per width."""
    masks, upto = k.flip_masks(width, tmax)
    return masks, upto


@lru_cache(maxsize=256)
def _probe_args(layout: Layout, radius: int,
                ) -> tuple[Positions, NDArray[np.uint64], Positions]:
    """The per-chunk radii and the flip masks for one layout and radius (read-only:
    they are shared by every search that uses them)."""
    tvec = np.array(split_radius(radius, layout.chunks), dtype=np.int64)
    masks, upto = _masks(layout.width, int(max(0, tvec.max())))
    return _readonly(tvec), _readonly(masks), _readonly(upto)


def _readonly(arr: NDArray[_T] | None) -> NDArray[_T]:
    """A read-only view. Numba then knows the kernel cannot write through it, so it may
    reorder and overlap loads freely (measured ~1.5x on the multi-index probe)."""
    assert arr is not None
    view = np.asarray(arr).view()
    view.flags.writeable = False
    return view


#: threads a big batch of queries is split over (the kernels release the GIL); 1: never
SEARCH_THREADS = max(1, min(4, int(os.environ.get("VIGIL_SEARCH_THREADS") or os.cpu_count() or 1)))
#: batches smaller than this are searched in the calling thread (a hand-off costs more)
PARALLEL_MIN_QUERIES = 128
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="vigil-search")
        return _pool


#: a search kernel's hits: (query index, row, distance) as three parallel arrays
Hits = tuple[Positions, Positions, Distances]


def _split(kernel: Callable[[Words], Hits], qw: Words, threads: int | None = None) -> Hits:
    """Run a search kernel over the query words, in slices on several threads when the
    batch is big: a 1,000-signal match request then uses the cores the other worker
    leaves idle. Hits are (query index, row, distance), query indexes shifted back to the
    whole batch; ``SearchResult.from_hits`` sorts them, so the result is the same as one
    call's (tested)."""
    threads = SEARCH_THREADS if threads is None else threads
    nq = len(qw)
    if threads <= 1 or nq < PARALLEL_MIN_QUERIES:
        return kernel(qw)
    bounds = np.linspace(0, nq, threads + 1).astype(np.int64)
    slices = [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]
    futures = [_executor().submit(kernel, np.ascontiguousarray(qw[a:b])) for a, b in slices]
    starts = [a for a, _ in slices]
    parts = [f.result() for f in futures]
    return (np.concatenate([hq + a for (hq, _, _), a in zip(parts, starts, strict=True)]),
            np.concatenate([hr for _, hr, _ in parts]),
            np.concatenate([hd for _, _, hd in parts]))


@dataclass
class _Base:
    """Immutable codes + ids (sorted by id) + tables, with a mutable tombstone mask."""

    codes: Codes  # possibly memory-mapped
    ids: Ids  # strictly increasing
    alive: Alive  # writable
    layout: Layout | None = None
    offsets: NDArray[np.uint32] | None = None  # (chunks, 2^width + 1)
    rows: NDArray[np.uint32] | None = None  # (chunks, N)
    n_alive: int = field(init=False)
    _views: tuple[NDArray[Any], ...] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.n_alive = int(np.count_nonzero(self.alive))

    def views(self) -> tuple[NDArray[Any], ...]:
        """Read-only (words, alive, offsets, rows) for the kernels, made once per base.

        Why: a server searches one code per request, and making these four views (and
        the per-radius arguments, ``_probe_args``) every time was a fifth of a 1M-code
        search. ``alive`` stays a view of the writable mask, so removals show at once."""
        if self._views is None:
            words, alive = _readonly(self.words), _readonly(self.alive)
            if self.offsets is None:
                self._views = (words, alive)
            else:
                self._views = (words, alive, _readonly(self.offsets), _readonly(self.rows))
        return self._views

    @property
    def words(self) -> Words:
        return np.asarray(self.codes).view("<u8")

    @classmethod
    def build(cls, codes: Codes, ids: Ids, layout: Layout | None) -> _Base:
        order = np.argsort(ids, kind="stable")
        codes = np.ascontiguousarray(codes[order])
        ids = np.ascontiguousarray(ids[order])
        base = cls(codes, ids, np.ones(len(ids), dtype=np.uint8), layout)
        if layout is not None and len(ids):
            if len(ids) >= 2**32:
                raise ValueError("a single index holds fewer than 2^32 codes; shard it")
            words = base.words
            offsets = np.empty((layout.chunks, (1 << layout.width) + 1), dtype=np.uint32)
            rows = np.empty((layout.chunks, len(ids)), dtype=np.uint32)
            for i in range(layout.chunks):
                offsets[i], rows[i] = k.build_table(words, i * layout.width, layout.width)
            base.offsets, base.rows = offsets, rows
        else:
            base.layout = None
        return base


def _empty_base() -> _Base:
    return _Base(np.zeros((0, CODE_BYTES), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.uint8))


class HammingIndex:
    """Exact Hamming radius search over 256-bit codes: multi-index tables + delta + tombstones.

    ``strategy`` and ``layout`` exist for tests and benchmarks; the defaults pick both from
    the cost model in :mod:`vigil.index.plan`.
    """

    def __init__(
        self,
        *,
        strategy: Strategy = "auto",
        layout: Layout | None = None,
        delta_limit: int | None = None,
    ) -> None:
        if strategy not in ("auto", "tables", "scan"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if layout is not None and not (
            1 <= layout.width <= 28 and layout.chunks >= 1 and layout.chunks * layout.width <= 256
        ):
            raise ValueError(f"invalid layout {layout}")
        self.strategy: Strategy = strategy
        self.fixed_layout = layout
        self.delta_limit = delta_limit
        self._base = _empty_base()
        self._dcodes = np.zeros((0, CODE_BYTES), np.uint8)
        self._dids = np.zeros(0, np.int64)

    # -- size and bookkeeping -------------------------------------------------------------

    def __len__(self) -> int:
        return self._base.n_alive + len(self._dids)

    @property
    def layout(self) -> Layout | None:
        """The base's table layout (None when the base is scanned)."""
        return self._base.layout

    def nbytes(self) -> int:
        """Bytes held by codes, ids, tombstones and tables (what the memory budget counts)."""
        b = self._base
        arrays: list[NDArray[Any] | None] = [b.codes, b.ids, b.alive, b.offsets, b.rows,
                                             self._dcodes, self._dids]
        return int(sum(a.nbytes for a in arrays if a is not None))

    def pending(self) -> int:
        """Codes in the delta, not yet folded into the indexed base."""
        return len(self._dids)

    def _limit(self) -> int:
        if self.delta_limit is not None:
            return self.delta_limit
        return max(20_000, len(self._base.ids) // 128)

    def _pick_layout(self, n: int) -> Layout | None:
        if self.strategy == "scan" or n == 0:
            return None
        if self.fixed_layout is not None:
            return self.fixed_layout
        layout = choose_layout(n)
        if layout is None and self.strategy == "tables":
            layout = Layout(16, 16)
        return layout

    def _present(self, ids: Ids) -> Flags:
        found, pos = sorted_member(self._base.ids, ids)
        live = found & (self._base.alive[pos] == 1) if len(self._base.ids) else found
        return live | np.isin(ids, self._dids)

    # -- mutation -------------------------------------------------------------------------

    def add(self, codes: Codes, ids: Ids) -> None:
        """Add codes under new unique ids; they are searchable immediately (via the delta)."""
        codes = check_codes(codes)
        ids = as_ids(ids, len(codes))
        check_unique(ids)
        clash = self._present(ids)
        if clash.any():
            raise ValueError(f"id {int(ids[np.argmax(clash)])} is already in the index")
        self._dcodes = np.concatenate([self._dcodes, codes])
        self._dids = np.concatenate([self._dids, ids])
        if len(self._dids) > self._limit():
            self.compact()

    def remove(self, ids: Ids) -> int:
        """Remove ids (unknown ones are ignored); returns how many were actually removed."""
        ids = np.unique(as_ids(ids))
        removed = 0
        base = self._base
        if len(base.ids):
            found, pos = sorted_member(base.ids, ids)
            pos = pos[found]
            pos = pos[base.alive[pos] == 1]
            base.alive[pos] = 0
            base.n_alive -= len(pos)
            removed += len(pos)
        gone = np.isin(self._dids, ids)
        if gone.any():
            self._dcodes = self._dcodes[~gone]
            self._dids = self._dids[~gone]
            removed += int(gone.sum())
        dead = len(base.ids) - base.n_alive
        if dead > max(self._limit(), len(base.ids) // 4):
            self.compact()
        return removed

    def compact(self) -> None:
        """Fold the delta and drop tombstones into a freshly built base (exact throughout)."""
        base = self._base
        keep = base.alive.astype(bool)
        codes = np.concatenate([np.asarray(base.codes)[keep], self._dcodes])
        ids = np.concatenate([np.asarray(base.ids)[keep], self._dids])
        self._base = _Base.build(codes, ids, self._pick_layout(len(ids)))
        self._dcodes = np.zeros((0, CODE_BYTES), np.uint8)
        self._dids = np.zeros(0, np.int64)

    # -- search ---------------------------------------------------------------------------

    def search(self, queries: Codes, radius: int = 31,
               threads: int | None = None) -> SearchResult:
        """Every stored code within ``radius`` (0..256) of each query, with exact distances.

        ``threads``: how many threads a big batch is split over (default
        ``SEARCH_THREADS``; the result does not depend on it)."""
        queries = check_codes(queries)
        r = check_radius(radius)
        nq = len(queries)
        if nq == 0 or len(self) == 0:
            return SearchResult.empty(nq)
        qw = as_words(queries)
        parts_q, parts_id, parts_d = [], [], []
        base = self._base
        if base.n_alive:
            if self._tables_for(r):
                assert base.layout is not None
                tvec, masks, upto = _probe_args(base.layout, r)
                words, alive, offsets, rows = base.views()
                width = base.layout.width
                hq, hr, hd = _split(lambda q: k.mih_search(
                    words, alive, width, offsets, rows, tvec, masks, upto, q, r), qw, threads)
            else:
                words, alive = base.views()[:2]
                hq, hr, hd = _split(lambda q: k.scan(words, alive, q, r), qw, threads)
            parts_q.append(hq)
            parts_id.append(np.asarray(base.ids)[hr])
            parts_d.append(hd)
        if len(self._dids):
            alive = np.ones(len(self._dids), np.uint8)
            hq, hr, hd = k.scan(as_words(self._dcodes), alive, qw, r)
            parts_q.append(hq)
            parts_id.append(self._dids[hr])
            parts_d.append(hd)
        if len(parts_q) == 1:
            return SearchResult.from_hits(nq, parts_q[0], parts_id[0], parts_d[0])
        return SearchResult.from_hits(
            nq, np.concatenate(parts_q), np.concatenate(parts_id), np.concatenate(parts_d)
        )

    def _tables_for(self, radius: int) -> bool:
        layout = self._base.layout
        if layout is None or self.strategy == "scan":
            return False
        if self.strategy == "tables":
            return True
        return use_tables(layout, len(self._base.ids), radius)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write a directory of ``.npy`` arrays + a versioned JSON manifest (no pickle)."""
        b = self._base
        arrays: dict[str, NDArray[Any]] = {
            "base_codes": np.asarray(b.codes),
            "base_ids": np.asarray(b.ids),
            "base_alive": b.alive,
            "delta_codes": self._dcodes,
            "delta_ids": self._dids,
        }
        layout = None
        if b.layout is not None:
            arrays["table_offsets"] = np.asarray(b.offsets)
            arrays["table_rows"] = np.asarray(b.rows)
            layout = {"chunks": b.layout.chunks, "width": b.layout.width}
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "size": len(self),
            "layout": layout,
            "strategy": self.strategy,
        }
        write_index_dir(path, manifest, arrays)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> HammingIndex:
        """Open a saved index; with ``mmap`` the big arrays are mapped, not read.

        Mapping makes a 10M-code index available in milliseconds and lets worker processes
        share one copy in the page cache. Tombstones are read into memory so removals work;
        a later ``compact()`` or ``save()`` writes a new base.
        """
        manifest = read_manifest(path, FORMAT, VERSION)
        index = cls(strategy=manifest.get("strategy", "auto"))
        raw = manifest.get("layout")
        layout = Layout(int(raw["chunks"]), int(raw["width"])) if raw else None
        index.fixed_layout = None
        base = _Base(
            load_array(path, "base_codes", mmap),
            load_array(path, "base_ids", mmap),
            load_array(path, "base_alive", mmap, writable=True),
            layout,
        )
        if layout is not None:
            base.offsets = np.asarray(load_array(path, "table_offsets", mmap))
            base.rows = np.asarray(load_array(path, "table_rows", mmap))
        index._base = base
        index._dcodes = np.array(load_array(path, "delta_codes", mmap=False))
        index._dids = np.array(load_array(path, "delta_ids", mmap=False))
        return index
