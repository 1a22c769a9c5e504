"""What one worker holds: the store, the shared on-disk index kept current, the audit log.

How workers stay current without rebuilds or per-worker copies: every worker opens the
same index generation on disk memory-mapped (the OS shares the pages), then a background
thread replays the change log after the generation's checkpoint every ``sync_interval``
seconds. New entries are matchable, and removed ones gone, within about that interval.

Two properties make this safe with several workers: change ids commit in id order
(``Banks.apply`` takes a PostgreSQL advisory lock), and only one process writes a new index
generation at a time (``BankIndexes.save`` takes a file lock).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from vigil.api.settings import Settings
from vigil.audit import AuditLog
from vigil.banks import Banks
from vigil.index import SearchResult
from vigil.indexes import BankIndexes
from vigil.matching import Matcher
from vigil.node import NodeIdentity, audit_key, identity
from vigil.store.models import Bank, Change

log = logging.getLogger("vigil.api")


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
            with self.lock:
                n = self.indexes.sync()
            self.last_sync, self.last_error = time.monotonic(), None
            return n
        except Exception as exc:  # the store may be briefly away; keep serving, say so
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("index sync failed: %s", self.last_error)
            return 0

    # the two calls Matcher makes, under the lock that sync() takes to mutate
    def search_pdq(self, codes: np.ndarray, radius: int) -> SearchResult:
        with self.lock:
            return self.indexes.search_pdq(codes, radius)

    def lookup(self, signal_type: str, values: list[str]) -> SearchResult:
        with self.lock:
            return self.indexes.lookup(signal_type, values)

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


class NodeState:
    """Everything a request handler needs, built once per worker at startup."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        ident = identity(engine)
        if ident is None:
            raise RuntimeError("this node has no identity yet: run `vigil init` first")
        self.identity: NodeIdentity = ident
        self.audit = AuditLog(engine, audit_key(settings.home), settings.audit_folder,
                              group_commit=True)
        self.index = IndexService(engine, settings)
        self.matcher = Matcher(Banks(engine), self.index)  # type: ignore[arg-type]

    def banks(self, actor: str) -> Banks:
        return Banks(self.engine, user=actor)

    def own_banks(self, agency: str) -> set[str]:
        with Session(self.engine) as s:
            return set(s.scalars(select(Bank.name).where(Bank.agency == agency)))

    def bank_agency(self, name: str) -> str | None:
        with Session(self.engine) as s:
            return s.scalar(select(Bank.agency).where(Bank.name == name))
