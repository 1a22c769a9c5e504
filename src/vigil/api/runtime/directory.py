"""A worker's directory of banks, and the thread that keeps its caches close to the store.

Banks are few and change rarely, but every match request needs the caller's banks and
every hit its bank's name. A revocation or a new bank made through this node's API
reaches every worker of the host at once (a shared counter, ``vigil.api.runtime.epochs``);
one made elsewhere (another host, the CLI, SQL) within the refresh interval, and within
the caches' TTL (5 s) even if the refresh thread cannot reach the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from vigil.api.runtime.auth_cache import AuthCache
from vigil.store.models import Bank
from vigil.store.models_node import Principal, Token

log = logging.getLogger("vigil.api")
#: how long a worker's bank directory may be used without a refresh, at most (seconds)
BANKS_CACHE_SECONDS = 5.0


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
