"""The exposure ledger on SQLite and PostgreSQL, with a clock the test moves: what a
session counts, when caps refuse, what a break resets, what reaches the audit chain."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from vigil.review.ledger import CapReached, Caps, Ledger, LedgerError


class Clock:
    def __init__(self) -> None:
        self.t = 1_780_000_000.0  # a fixed UTC time, mid-day

    def __call__(self) -> float:
        return self.t


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, str | None, dict[str, Any]]] = []

    def __call__(self, action: str, target: str | None = None, **detail: Any) -> object:
        self.records.append((action, target, detail))
        return None


def _ledger(engine: Engine, **caps: float) -> tuple[Ledger, Clock, Sink]:
    clock, sink = Clock(), Sink()
    return Ledger(engine, Caps(**caps), sink, clock), clock, sink


def hold(led: Ledger, clock: Clock, reviewer: str, item: int, seconds: int,
         level: int = 0) -> float:
    """A page holding a reveal: a heartbeat a second, then the stop."""
    s = led.start(reviewer, "scan1", item, level)
    for _ in range(seconds):
        clock.t += 1
        led.beat(reviewer, s.id)
    return led.stop(reviewer, s.id)


def test_a_held_reveal_counts_its_seconds(engine: Engine) -> None:
    led, clock, sink = _ledger(engine)
    s = led.start("ana", "scan1", 5, 0)
    assert s.mode == "clear" and s.max_seconds == 5.0
    for _ in range(3):
        clock.t += 1
        assert led.beat("ana", s.id)
    assert led.allows("ana", s.id, 5, 0)
    assert not led.allows("ana", s.id, 6, 0)  # another item
    assert not led.allows("bob", s.id, 5, 0)  # another reviewer
    clock.t += 0.5
    assert led.stop("ana", s.id) == pytest.approx(3.5)
    assert not led.allows("ana", s.id, 5, 0)
    assert led.stop("ana", s.id) == pytest.approx(3.5)  # idempotent
    st = led.status("ana")
    assert st.today_clear == pytest.approx(3.5) and st.today_light == 0
    assert sink.records == [("review.exposure", "scan1", {
        "reviewer": "ana", "item": 5, "mode": "clear", "day": st_day(clock),
        "category": "undecided", "seconds": 3.5})]


def st_day(clock: Clock) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(clock.t, UTC).date().isoformat()


def test_the_server_caps_a_reveal_and_a_page_that_went_silent(engine: Engine) -> None:
    led, clock, _ = _ledger(engine, reveal_seconds=5, grace_seconds=2)
    s = led.start("ana", "scan1", 5, 0)
    clock.t += 60  # the stop never came
    assert not led.beat("ana", s.id)
    assert led.stop("ana", s.id) == pytest.approx(2.0)  # last beat (start) + grace
    s = led.start("ana", "scan1", 5, 0)
    for _ in range(10):
        clock.t += 1
        led.beat("ana", s.id)
    assert led.stop("ana", s.id) == pytest.approx(5.0)  # never longer than the reveal cap


def test_a_run_cap_refuses_until_the_break_is_over(engine: Engine) -> None:
    led, clock, _ = _ledger(engine, run_seconds=10, break_seconds=60, reveal_seconds=5)
    for _ in range(2):
        assert hold(led, clock, "ana", 1, 5) == pytest.approx(5.0)
        clock.t += 1
    with pytest.raises(CapReached) as info:
        led.start("ana", "scan1", 1, 0)
    assert "break" in info.value.reason
    assert led.status("bob").refused_until is None  # per reviewer
    clock.t += 30
    with pytest.raises(CapReached):
        led.start("ana", "scan1", 1, 0)
    clock.t += 31  # 60 s since the last viewing ended
    led.start("ana", "scan1", 1, 0)
    assert led.status("ana").run_exposure == 0


def test_the_daily_cap_and_lightly_blurred_weight(engine: Engine) -> None:
    led, clock, _ = _ledger(engine, run_seconds=10_000, daily_seconds=20,
                            light_session_seconds=600, light_weight=0.5)
    s = led.start("ana", "scan1", 1, 2)
    assert s.mode == "light" and s.max_seconds == 600
    for _ in range(30):
        clock.t += 1
        assert led.beat("ana", s.id)
    assert led.stop("ana", s.id) == pytest.approx(30.0)
    st = led.status("ana")
    assert st.today_light == pytest.approx(30.0) and st.today_exposure == pytest.approx(15.0)
    assert st.refused_until is None
    s = led.start("ana", "scan1", 1, 2)
    for _ in range(9):
        clock.t += 1
        assert led.beat("ana", s.id)
    clock.t += 1
    assert not led.beat("ana", s.id)  # 15 + 0.5 * 10 = 20: the cap closes the session
    with pytest.raises(CapReached) as info:
        led.start("ana", "scan1", 1, 0)
    assert "today" in info.value.reason
    assert (info.value.until.hour, info.value.until.minute) == (0, 0)


def test_exposure_is_attributed_to_the_decided_category(engine: Engine) -> None:
    led, clock, _ = _ledger(engine)
    hold(led, clock, "ana", 9, 2)
    led.categorise("scan1", [9], "us:1")
    rows = led.figures("ana")
    assert [(c, m, round(sec)) for _d, c, m, sec, _n in rows] == [("us:1", "clear", 2)]
    totals, people = led.totals()
    assert people == 1 and [(m, round(sec)) for _d, m, sec, _n in totals] == [("clear", 2)]


def test_a_session_of_another_reviewer_is_refused(engine: Engine) -> None:
    led, _, _ = _ledger(engine)
    s = led.start("ana", "scan1", 9, 0)
    with pytest.raises(LedgerError):
        led.stop("bob", s.id)
    with pytest.raises(LedgerError):
        led.beat("bob", 10**9)
