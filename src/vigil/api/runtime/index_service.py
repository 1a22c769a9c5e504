"""A worker's view of the shared on-disk index: kept current by a thread, searched under a lock.

How workers stay current without rebuilds or per-worker copies: every worker opens the
same index generation on disk memory-mapped (the OS shares the pages), then a background
thread replays the change log after the generation's checkpoint every ``sync_interval``
seconds. New entries are matchable, and removed ones gone, within about that interval.
Only one process writes a new index generation at a time (``BankIndexes.save`` takes a
file lock), and change ids commit in id order (``vigil.store.dialects``), so tailing the
log by id never steps over a change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from vigil.api.runtime.settings import Settings
from vigil.banks.indexes import EXACT_SIZES, BankIndexes
from vigil.index import ExactIndex, HammingIndex, SearchResult, codes_from_hex
from vigil.index.arrays import Codes
from vigil.index.mih import Strategy
from vigil.index.video import VideoMatch
from vigil.signals.vpdq import VpdqFrame
from vigil.store.models import Change

log = logging.getLogger("vigil.api")


def _compile_kernels() -> None:
    """Run every search kernel once on a throwaway index (tables, scan, delta, exact), so
    a fresh machine compiles them now and not under the first request that finds a hit."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (64, 32), dtype=np.uint8)
    strategies: tuple[Strategy, ...] = ("tables", "scan")
    for strategy in strategies:
        idx = HammingIndex(strategy=strategy)
        idx.add(codes, np.arange(64, dtype=np.int64))
        idx.compact()
        idx.add(codes[:1], np.array([64], dtype=np.int64))  # and one code in the delta
        idx.search(codes[:2], 31)
    ex = ExactIndex(16)
    ex.add(codes[:4, :16], np.arange(4, dtype=np.int64))
    ex.lookup(codes[:2, :16])


class IndexService:
    """The worker's view of the shared index, a lock for readers, and the tailing thread."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.interval = settings.sync_interval
        self.lock = threading.Lock()
        self.indexes = BankIndexes(engine, settings.index_folder)
        self.last_sync = time.monotonic()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-index-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync()

    def sync(self) -> int:
        try:
            if self.indexes.head() == self.indexes.checkpoint:
                # Nothing new (the usual tick): no lock. Holding it across the store's
                # round trips, while request threads hold the GIL, kept it taken for
                # milliseconds twice a second and sent searches to the thread pool.
                self.last_sync, self.last_error = time.monotonic(), None
                return 0
            with self.lock:
                n = self.indexes.sync()
            self.last_sync, self.last_error = time.monotonic(), None
            return n
        except Exception as exc:  # the store may be briefly away; keep serving, say so
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("index sync failed: %s", self.last_error)
            return 0

    def warm(self) -> None:
        """One search of each kind before serving: loads the compiled search kernels
        (numba; compiling them on a machine without the cache takes seconds) and touches
        the mapped index, so the first requests after a start do not pay for it."""
        try:
            self.search_pdq(codes_from_hex(["0" * 64]), 31)
            for t, size in EXACT_SIZES.items():
                self.lookup(t, ["0" * (2 * size)])
            _compile_kernels()  # the served index may be empty: no kernel ran above
        except Exception as exc:  # never keep a worker from starting over a warm-up
            log.warning("index warm-up failed: %s", f"{type(exc).__name__}: {exc}"[:300])

    # the matcher's index (``vigil.matching.SignalIndex``), under the lock sync() takes
    def search_pdq(self, codes: Codes, radius: int) -> SearchResult:
        with self.lock:
            return self.indexes.search_pdq(codes, radius)

    def search_pdq_derived(self, codes: Codes, radius: int) -> SearchResult:
        with self.lock:
            return self.indexes.search_pdq_derived(codes, radius)

    def search_pdq_featured(self, codes: Codes, radius: int) -> SearchResult:
        with self.lock:
            return self.indexes.search_pdq_featured(codes, radius)

    def lookup(self, signal_type: str, values: list[str]) -> SearchResult:
        with self.lock:
            return self.indexes.lookup(signal_type, values)

    def search_videos(self, queries: Sequence[Sequence[VpdqFrame]]) -> list[list[VideoMatch]]:
        with self.lock:
            return self.indexes.search_videos(queries)

    def status(self) -> dict[str, Any]:
        """Checkpoint, lag (changes not yet replayed, seconds since the last sync), sizes."""
        with Session(self.engine) as s:
            top = s.scalar(select(func.max(Change.id))) or 0
        with self.lock:
            checkpoint = self.indexes.checkpoint
            sizes = self.indexes.sizes()
        return {"checkpoint": checkpoint, "head": top, "lag_changes": max(0, top - checkpoint),
                "lag_seconds": round(time.monotonic() - self.last_sync, 3),
                "sizes": sizes, "error": self.last_error}
