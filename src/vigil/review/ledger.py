"""The exposure ledger: seconds of clear and lightly-blurred viewing, counted and capped by
the server.

Why the server counts: a page can lie, crash or be closed; the server hands out a clear
picture only inside a *viewing session* it opened itself, and it alone decides how long
that session lasted. A session is opened when a reveal starts (``clear``) or the blur is
lowered (``light``), kept alive by the page's heartbeats, and closed by the page (key
released, tab hidden, next item), by the server when the heartbeats stop (``grace``
seconds after the last one) or when it reaches its longest allowed length
(``reveal_seconds`` for a reveal). Its seconds are ``min(closed, last beat + grace,
start + longest) - start``.

Caps (``Caps``; defaults after the welfare policies of hotlines: 20 minutes of clear
viewing, then a 5-minute break; 60 minutes a day): exposure is clear seconds plus
lightly-blurred seconds times ``light_weight``. A *run* is exposure without a pause of
``break_seconds``; once a run reaches ``run_seconds`` no new session opens until the
break has passed, and once a UTC day's exposure reaches ``daily_seconds`` none opens until
the next day. At a cap the server refuses (``CapReached``; the API's 403), whatever the
page shows.

Every closed session is also one record in the node's audit chain (``review.exposure``:
reviewer, mode, seconds, day, category; an item number, never a hash). A reviewer sees
their own figures (``figures``); an admin sees totals only (``totals``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from vigil.store.models_review import ReviewExposure

MODES = ("clear", "light")


class AuditSink(Protocol):
    """Where exposure records go (``vigil.cli._audit.LocalAudit.record`` has this shape)."""

    def __call__(self, action: str, target: str | None = None, **detail: Any) -> object: ...


@dataclass(frozen=True, slots=True)
class Caps:
    """Configurable caps and break rules (seconds); see the module for what they mean."""

    run_seconds: float = 20 * 60
    break_seconds: float = 5 * 60
    daily_seconds: float = 60 * 60
    reveal_seconds: float = 5.0
    light_session_seconds: float = 10 * 60
    light_weight: float = 0.5
    grace_seconds: float = 2.0

    def longest(self, mode: str) -> float:
        return self.reveal_seconds if mode == "clear" else self.light_session_seconds


class CapReached(Exception):
    """Clear viewing is refused until ``until`` (a break, or the next day)."""

    def __init__(self, reason: str, until: datetime) -> None:
        super().__init__(reason)
        self.reason = reason
        self.until = until


class LedgerError(ValueError):
    """A session that is not this reviewer's, or not open."""


@dataclass(frozen=True, slots=True)
class Status:
    """A reviewer's exposure now."""

    today_clear: float
    today_light: float
    today_exposure: float
    run_exposure: float
    refused_until: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Opened:
    """A viewing session the server opened: its id and how long it may last."""

    id: int
    mode: str
    level: int
    item: int
    max_seconds: float


def span(seconds: float) -> str:
    """``20 minutes``, ``90 seconds``: a cap as people say it."""
    if seconds >= 60 and seconds % 60 == 0:
        m = int(seconds // 60)
        return f"{m} minute{'s' if m != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class Ledger:
    """Exposure sessions in the node's store (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, caps: Caps | None = None,
                 audit: AuditSink | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.caps = caps or Caps()
        self.audit = audit
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # ---- sessions ----------------------------------------------------------------------

    def start(self, reviewer: str, scan: str, item: int, level: int,
              category: str = "undecided") -> Opened:
        """Open a session (closing the reviewer's others first); ``CapReached`` at a cap."""
        mode = "clear" if level == 0 else "light"
        self.close_all(reviewer)
        st = self.status(reviewer)
        if st.refused_until is not None:
            raise CapReached(st.reason or "cap reached", st.refused_until)
        now = self._now()
        with Session(self.engine) as s, s.begin():
            row = ReviewExposure(reviewer=reviewer, scan=scan, item=item, mode=mode,
                                 level=level, day=now.date().isoformat(), category=category,
                                 started_at=now, last_beat_at=now, ended_at=None, seconds=0.0)
            s.add(row)
            s.flush()
            sid = row.id
        return Opened(sid, mode, level, item, self.caps.longest(mode))

    def _row(self, s: Session, reviewer: str, sid: int) -> ReviewExposure:
        row = s.get(ReviewExposure, sid)
        if row is None or row.reviewer != reviewer:
            raise LedgerError(f"no viewing session {sid} of this reviewer")
        return row

    def _seconds(self, row: ReviewExposure, end: datetime) -> float:
        start = _aware(row.started_at)
        last = _aware(row.last_beat_at) + timedelta(seconds=self.caps.grace_seconds)
        limit = start + timedelta(seconds=self.caps.longest(row.mode))
        return max(0.0, (min(end, last, limit) - start).total_seconds())

    def _expired(self, row: ReviewExposure, now: datetime) -> bool:
        start = _aware(row.started_at)
        return (now > _aware(row.last_beat_at) + timedelta(seconds=self.caps.grace_seconds)
                or now >= start + timedelta(seconds=self.caps.longest(row.mode)))

    def _close(self, s: Session, row: ReviewExposure, now: datetime) -> float:
        secs = round(self._seconds(row, now), 3)
        row.ended_at = now
        row.seconds = secs
        return secs

    def _audited(self, rows: list[tuple[str, str, int, str, str, str, float]]) -> None:
        if self.audit is None:
            return
        for reviewer, scan, item, mode, day, category, secs in rows:
            self.audit("review.exposure", scan, reviewer=reviewer, item=item, mode=mode,
                       day=day, category=category, seconds=round(secs, 1))

    def beat(self, reviewer: str, sid: int) -> bool:
        """A heartbeat: True while the session stays open; False once it is closed (too
        long, too late, or over a cap: the page must stop showing the picture)."""
        now = self._now()
        done: list[tuple[str, str, int, str, str, str, float]] = []
        with Session(self.engine) as s, s.begin():
            row = self._row(s, reviewer, sid)
            if row.ended_at is not None:
                return False
            if self._expired(row, now):
                secs = self._close(s, row, now)
                done.append((row.reviewer, row.scan, row.item, row.mode, row.day,
                             row.category, secs))
            else:
                row.last_beat_at = now
        if done:
            self._audited(done)
            return False
        if self.status(reviewer, open_ok=True).refused_until is not None:
            self.stop(reviewer, sid)
            return False
        return True

    def stop(self, reviewer: str, sid: int) -> float:
        """Close a session (idempotent); its counted seconds."""
        now = self._now()
        with Session(self.engine) as s, s.begin():
            row = self._row(s, reviewer, sid)
            if row.ended_at is not None:
                return row.seconds
            secs = self._close(s, row, now)
            rec = (row.reviewer, row.scan, row.item, row.mode, row.day, row.category, secs)
        self._audited([rec])
        return secs

    def close_all(self, reviewer: str) -> None:
        """Close the reviewer's open sessions (a new one starts, or the page went away)."""
        now = self._now()
        done = []
        with Session(self.engine) as s, s.begin():
            for row in s.scalars(select(ReviewExposure).where(
                    ReviewExposure.reviewer == reviewer, ReviewExposure.ended_at.is_(None))):
                secs = self._close(s, row, now)
                done.append((row.reviewer, row.scan, row.item, row.mode, row.day,
                             row.category, secs))
        self._audited(done)

    def allows(self, reviewer: str, sid: int, item: int, level: int) -> bool:
        """Whether session ``sid`` lets this reviewer see ``item`` at ``level`` now."""
        now = self._now()
        with Session(self.engine) as s:
            row = s.get(ReviewExposure, sid)
            return (row is not None and row.reviewer == reviewer and row.ended_at is None
                    and row.item == item and level >= row.level
                    and not self._expired(row, now))

    def categorise(self, scan: str, items: list[int], category: str) -> None:
        """Attribute the exposure to the items' category once decided (or back to
        ``undecided`` on undo)."""
        if not items:
            return
        with Session(self.engine) as s, s.begin():
            s.execute(update(ReviewExposure).where(ReviewExposure.scan == scan,
                                                   ReviewExposure.item.in_(items))
                      .values(category=category))

    # ---- figures -----------------------------------------------------------------------

    def status(self, reviewer: str, open_ok: bool = False) -> Status:
        """Exposure today and in the current run, and whether clear view is refused.

        ``open_ok``: count open sessions up to now (a heartbeat's check)."""
        now = self._now()
        c = self.caps
        since = now - timedelta(days=1, seconds=c.run_seconds + c.break_seconds)
        today = now.date().isoformat()
        with Session(self.engine) as s:
            rows = s.execute(select(ReviewExposure.mode, ReviewExposure.day,
                                    ReviewExposure.started_at, ReviewExposure.ended_at,
                                    ReviewExposure.seconds, ReviewExposure.last_beat_at,
                                    ReviewExposure.id)
                             .where(ReviewExposure.reviewer == reviewer,
                                    ReviewExposure.started_at >= since)
                             .order_by(ReviewExposure.started_at, ReviewExposure.id)).all()
        clear = light = 0.0
        run = 0.0
        prev_end: datetime | None = None
        for mode, day, started, ended, secs, last_beat, _sid in rows:
            start = _aware(started)
            if ended is None:
                if not open_ok:
                    continue
                fake = ReviewExposure(mode=mode, started_at=start, last_beat_at=last_beat)
                secs = self._seconds(fake, now)
                end = now
            else:
                end = start + timedelta(seconds=secs)
            weight = 1.0 if mode == "clear" else c.light_weight
            if day == today:
                clear += secs if mode == "clear" else 0.0
                light += secs if mode == "light" else 0.0
            if prev_end is not None and (start - prev_end).total_seconds() >= c.break_seconds:
                run = 0.0
            run += weight * secs
            prev_end = end if prev_end is None else max(prev_end, end)
        if prev_end is not None and (now - prev_end).total_seconds() >= c.break_seconds:
            run = 0.0
        exposure = clear + c.light_weight * light
        until: datetime | None = None
        reason: str | None = None
        if exposure >= c.daily_seconds:
            until = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
            reason = f"today's limit of {span(c.daily_seconds)} of exposure is reached"
        elif run >= c.run_seconds and prev_end is not None:
            until = prev_end + timedelta(seconds=c.break_seconds)
            reason = (f"{span(c.run_seconds)} of exposure without a break: take a break "
                      f"of {span(c.break_seconds)}")
        return Status(clear, light, exposure, run, until, reason)

    def figures(self, reviewer: str, days: int = 30) -> list[tuple[str, str, str, float, int]]:
        """This reviewer's (day, category, mode, seconds, sessions), newest day first."""
        self._sweep(reviewer)
        with Session(self.engine) as s:
            rows = s.execute(
                select(ReviewExposure.day, ReviewExposure.category, ReviewExposure.mode,
                       func.sum(ReviewExposure.seconds), func.count())
                .where(ReviewExposure.reviewer == reviewer,
                       ReviewExposure.ended_at.is_not(None))
                .group_by(ReviewExposure.day, ReviewExposure.category, ReviewExposure.mode)
                .order_by(ReviewExposure.day.desc(), ReviewExposure.category,
                          ReviewExposure.mode)).all()
        return [(d, c, m, float(sec or 0), int(n)) for d, c, m, sec, n in rows][:days * 20]

    def totals(self, days: int = 30) -> tuple[list[tuple[str, str, float, int]], int]:
        """All reviewers together: (day, mode, seconds, sessions), and how many reviewers
        there are; never one person's figures."""
        with Session(self.engine) as s:
            rows = s.execute(
                select(ReviewExposure.day, ReviewExposure.mode,
                       func.sum(ReviewExposure.seconds), func.count())
                .where(ReviewExposure.ended_at.is_not(None))
                .group_by(ReviewExposure.day, ReviewExposure.mode)
                .order_by(ReviewExposure.day.desc(), ReviewExposure.mode)).all()
            people = s.scalar(select(func.count(func.distinct(ReviewExposure.reviewer)))) or 0
        return [(d, m, float(sec or 0), int(n)) for d, m, sec, n in rows][:days * 2], people

    def _sweep(self, reviewer: str) -> None:
        """Close sessions whose page went away without saying so."""
        now = self._now()
        done = []
        with Session(self.engine) as s, s.begin():
            for row in s.scalars(select(ReviewExposure).where(
                    ReviewExposure.reviewer == reviewer, ReviewExposure.ended_at.is_(None))):
                if self._expired(row, now):
                    secs = self._close(s, row, now)
                    done.append((row.reviewer, row.scan, row.item, row.mode, row.day,
                                 row.category, secs))
        self._audited(done)
