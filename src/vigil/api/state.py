"""What one worker holds: the store, the shared on-disk index kept current, the audit log.

How workers stay current without rebuilds or per-worker copies: every worker opens the
same index generation on disk memory-mapped (the OS shares the pages), then a background
thread replays the change log after the generation's checkpoint every ``sync_interval``
seconds. New entries are matchable, and removed ones gone, within about that interval.

Two properties make this safe with several workers: change ids commit in id order
(``Banks.apply`` takes a PostgreSQL advisory lock), and only one process writes a new index
generation at a time (``BankIndexes.save`` takes a file lock).

The hot path reads nothing from the store but the hits' entries: each worker caches
token -> principal (``AuthCache``) and the banks (``BankDirectory``). A revocation or a new
bank made through this node's API reaches every worker of the host at once (a shared
counter, ``EpochFile``); one made elsewhere (another host, the CLI, SQL) within the
refresh interval (the refresh thread polls the store), and within the caches' TTL (5 s)
even if that thread cannot reach the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from vigil.api.entries import CachedBanks, EntryCache
from vigil.api.settings import Settings
from vigil.audit import AuditLog
from vigil.banks import BankInfo, Banks
from vigil.index import ExactIndex, HammingIndex, SearchResult, codes_from_hex
from vigil.indexes import EXACT_SIZES, BankIndexes
from vigil.matching import Matcher
from vigil.node import (
    AUTH_CACHE_SECONDS,
    AuthCache,
    NodeIdentity,
    PrincipalInfo,
    audit_key,
    authenticate,
    epoch_file,
    identity,
)
from vigil.store.models import Bank, Change
from vigil.store.models_node import Principal, Token

log = logging.getLogger("vigil.api")
#: how long a worker's bank directory may be used without a refresh, at most (seconds)
BANKS_CACHE_SECONDS = 5.0


def _compile_kernels() -> None:
    """Run every search kernel once on a throwaway index (tables, scan, delta, exact), so
    a fresh machine compiles them now and not under the first request that finds a hit."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (64, 32), dtype=np.uint8)
    for strategy in ("tables", "scan"):
        idx = HammingIndex(strategy=strategy)  # type: ignore[arg-type]
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


class BankDirectory:
    """Bank id -> (name, agency), and each agency's bank names, held per worker.

    Banks are few and change rarely, but every match request needs the caller's banks and
    every hit its bank's name: reading them from the store each time cost more than the
    index search. The view is replaced whole (readers never see a half-built one) when
    this worker creates a bank, when another worker of the node says it did (``epoch``),
    by the refresh thread every sync interval, and at the latest after ``ttl`` seconds
    (if the refresh thread cannot reach the store). A name not found is looked up again
    before it is reported missing, so a bank made elsewhere is never refused.
    """

    def __init__(self, engine: Engine, ttl: float = BANKS_CACHE_SECONDS, *,
                 clock: Callable[[], float] = time.monotonic,
                 epoch: Callable[[], int] | None = None) -> None:
        self.engine = engine
        self.ttl = ttl
        self._clock, self._epoch = clock, epoch
        self._view: _BankView | None = None
        self._lock = threading.Lock()

    def view(self) -> _BankView:
        v = self._view
        if (v is None or self._clock() - v.loaded_at >= self.ttl
                or (self._epoch is not None and self._epoch() != v.epoch)):
            return self.reload(v)
        return v

    def reload(self, seen: _BankView | None = None) -> _BankView:
        """Read the banks again (once for all threads that found ``seen`` stale)."""
        with self._lock:
            if self._view is not seen and self._view is not None:
                v = self._view  # another thread reloaded while we waited: is it enough?
                if (self._clock() - v.loaded_at < self.ttl
                        and (self._epoch is None or self._epoch() == v.epoch)):
                    return v
            epoch = self._epoch() if self._epoch is not None else 0  # before the read
            at = self._clock()
            with self.engine.connect() as conn:
                rows = conn.execute(select(Bank.id, Bank.name, Bank.agency)).all()
            by_agency: dict[str, set[str]] = {}
            for _, name, agency in rows:
                by_agency.setdefault(agency, set()).add(name)
            v = _BankView({i: (n, a) for i, n, a in rows}, {n: a for _, n, a in rows},
                          {a: frozenset(ns) for a, ns in by_agency.items()}, at, epoch)
            self._view = v
            return v

    def invalidate(self) -> None:
        self._view = None

    def by_id(self) -> dict[int, tuple[str, str]]:
        return self.view().by_id

    def own(self, agency: str) -> set[str]:
        return set(self.view().by_agency.get(agency, ()))

    def agency_of(self, name: str) -> str | None:
        v = self.view()
        agency = v.by_name.get(name)
        if agency is None:
            agency = self.reload(v).by_name.get(name)
        return agency


@dataclass(frozen=True, slots=True)
class _BankView:
    by_id: dict[int, tuple[str, str]]
    by_name: dict[str, str]
    by_agency: dict[str, frozenset[str]]
    loaded_at: float
    epoch: int


def _auth_signature(engine: Engine) -> tuple[int, ...]:
    """What changes when a token is revoked or deleted or a principal disabled, by anyone:
    the refresh thread drops the token cache when it moves."""
    with engine.connect() as conn:
        row = conn.execute(select(
            select(func.count()).select_from(Token).scalar_subquery(),
            select(func.count()).select_from(Token)
            .where(Token.revoked_at.is_not(None)).scalar_subquery(),
            select(func.count()).select_from(Principal)
            .where(Principal.disabled.is_(True)).scalar_subquery())).one()
    return tuple(int(x or 0) for x in row)


class CacheRefresher:
    """A thread that keeps a worker's caches close to the store, every ``interval``:
    drops the token cache when any token was revoked (by another host, the CLI, SQL),
    re-reads the bank directory. The caches' TTLs bound staleness if it fails."""

    def __init__(self, engine: Engine, interval: float, auth: AuthCache,
                 banks: BankDirectory) -> None:
        self.engine, self.interval, self.auth, self.banks = engine, interval, auth, banks
        self.signature: tuple[int, ...] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-cache-refresh",
                                        daemon=True)

    def start(self) -> None:
        self.tick()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        try:
            sig = _auth_signature(self.engine)
            if sig != self.signature:
                self.auth.invalidate()
                self.signature = sig
            # tokens in use are re-checked before their TTL ends (AuthCache.revalidate)
            self.auth.revalidate(self.engine, within=4 * self.interval)
            self.banks.reload()
        except Exception as exc:  # the store may be briefly away; the TTLs bound staleness
            log.warning("cache refresh failed: %s", f"{type(exc).__name__}: {exc}"[:300])


class _NodeBanks(Banks):
    """``Banks`` that tells the node when the set of banks changed (the directory cache)."""

    def __init__(self, engine: Engine, user: str, changed: Callable[[], None]) -> None:
        super().__init__(engine, user=user)
        self._changed = changed

    def create(self, *args: Any, **kwargs: Any) -> BankInfo:
        info = super().create(*args, **kwargs)
        self._changed()
        return info


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
        self.epochs = epoch_file(settings.home)
        self.auth_cache = AuthCache(
            float(getattr(settings, "auth_cache_seconds", AUTH_CACHE_SECONDS)),
            epoch=self.epochs.reader("auth"))
        self.directory = BankDirectory(
            engine, float(getattr(settings, "banks_cache_seconds", BANKS_CACHE_SECONDS)),
            epoch=self.epochs.reader("banks"))
        self.refresher = CacheRefresher(engine, settings.sync_interval, self.auth_cache,
                                        self.directory)
        self.entries = EntryCache()
        self.index.indexes.on_touched = self.entries.drop
        #: the matcher's banks: hits resolve through the entry cache
        self.cached_banks = CachedBanks(engine, self.entries)
        self.matcher = Matcher(self.cached_banks,
                               self.index,  # type: ignore[arg-type]
                               bank_directory=self.directory.by_id)

    def start(self) -> None:
        self.refresher.start()
        self.index.warm()
        self.index.start()

    def stop(self) -> None:
        self.index.stop()
        self.refresher.stop()

    # ---- the caches ----------------------------------------------------------------------

    def authenticate(self, token: str) -> tuple[PrincipalInfo | None, str]:
        return authenticate(self.engine, token, self.auth_cache)

    def auth_changed(self) -> None:
        """A token was revoked or a principal disabled (committed): every worker of this
        host drops its token cache now."""
        self.auth_cache.invalidate()
        self.epochs.bump("auth")

    def banks_changed(self) -> None:
        """A bank was created (committed): every worker of this host re-reads the banks."""
        self.directory.invalidate()
        self.epochs.bump("banks")

    def banks(self, actor: str) -> Banks:
        return _NodeBanks(self.engine, actor, self.banks_changed)

    def own_banks(self, agency: str) -> set[str]:
        return self.directory.own(agency)

    def bank_agency(self, name: str) -> str | None:
        return self.directory.agency_of(name)
