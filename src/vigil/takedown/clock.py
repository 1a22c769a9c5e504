"""Time for the notice loop, injectable: a day's re-notices run in seconds in tests and
drills, and every due time in the database is in the same clock's terms.

``SystemClock`` is the wall clock (UTC). ``ManualClock`` is moved by its owner (tests in
one process). ``FileClock`` reads an ISO 8601 time from a file at every call, so a test
can move the clock of a ``vigil serve`` it started (``VIGIL_TAKEDOWN_CLOCK_FILE``);
an operator never sets it.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

CLOCK_ENV = "VIGIL_TAKEDOWN_CLOCK_FILE"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


class FileClock:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def now(self) -> datetime:
        try:
            t = datetime.fromisoformat(self.path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{CLOCK_ENV}: cannot read a time from {self.path}: "
                               f"{exc}") from None
        return t if t.tzinfo else t.replace(tzinfo=UTC)

    def set(self, t: datetime) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(t.isoformat())
        os.replace(tmp, self.path)


def clock_from_env() -> Clock:
    path = os.environ.get(CLOCK_ENV)
    return FileClock(path) if path else SystemClock()


def aware(t: datetime) -> datetime:
    """SQLite gives times back without their zone: they were stored as UTC."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)
