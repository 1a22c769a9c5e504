"""Periodic peer sync inside ``vigil serve``: every worker runs the timer, one syncs.

Each tick takes a non-blocking file lock in ``VIGIL_HOME/run``; the worker that gets it
syncs every peer, the others skip that tick. So a node with several workers pulls each
feed once per interval, and a sync that outlasts the interval is never run twice at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from vigil.audit import AuditLog
from vigil.exchange.sync import sync_all

log = logging.getLogger("vigil.exchange")
DEFAULT_INTERVAL = 60.0


def interval_from_env() -> float:
    """``VIGIL_PEER_SYNC_INTERVAL`` seconds (default 60; 0 turns periodic sync off)."""
    raw = os.environ.get("VIGIL_PEER_SYNC_INTERVAL")
    try:
        return float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        raise ValueError(f"VIGIL_PEER_SYNC_INTERVAL must be a number of seconds, "
                         f"got {raw!r}") from None


class PeerSyncThread:
    """Syncs all peers every ``interval`` seconds in the background."""

    def __init__(self, engine: Engine, home: Path, audit: AuditLog, interval: float,
                 banks_changed: Callable[[], None] | None = None,
                 also: Callable[[], None] | None = None) -> None:
        self.engine, self.home, self.audit, self.interval = engine, home, audit, interval
        self.banks_changed = banks_changed
        #: more to pull from the same peers in the same round (the workflows above this
        #: layer: the series registries of vigil.victimid), after the bank feeds
        self.also = also
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-peer-sync", daemon=True)
        self.lock_path = home / "run" / "peer-sync.lock"

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def tick(self) -> bool:
        """One round, if no other worker is in one; returns whether this worker synced."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                for r in sync_all(self.engine, self.home, audit=self.audit,
                                  banks_changed=self.banks_changed):
                    if not r.ok:
                        log.warning("peer sync %s: %s", r.peer, r.error or "; ".join(
                            f.error for f in r.feeds if f.error))
                if self.also is not None:
                    self.also()
            except Exception as exc:  # keep serving; the next tick tries again
                log.warning("peer sync failed: %s: %s", type(exc).__name__, exc)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()
