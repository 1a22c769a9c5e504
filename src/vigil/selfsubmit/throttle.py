"""Rate limits kept in the store, so every worker (and every host on one PostgreSQL)
counts the same attempts: per address for submissions and wrong PINs, per case for
wrong PINs and signed requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from vigil.store.models_selfsubmit import SelfAttempt


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` attempts per ``window``."""

    count: int
    window: timedelta


#: submissions per address
SUBMIT = Limit(5, timedelta(hours=1))
#: wrong PINs (or bad signatures) per address, and per case
WRONG_BY_ADDRESS = Limit(10, timedelta(minutes=15))
WRONG_BY_CASE = Limit(5, timedelta(minutes=15))
#: status checks, challenges and withdrawals per address
CHECKS = Limit(60, timedelta(minutes=15))


def over(s: Session, key: str, limit: Limit, now: datetime) -> bool:
    """Whether ``key`` already used up ``limit`` (attempts within the window)."""
    n = s.scalar(select(func.count()).select_from(SelfAttempt).where(
        SelfAttempt.key == key[:120], SelfAttempt.at > now - limit.window)) or 0
    return n >= limit.count


def count(s: Session, key: str, now: datetime) -> None:
    s.add(SelfAttempt(key=key[:120], at=now))


def prune(s: Session, now: datetime, keep: timedelta = timedelta(days=1)) -> None:
    s.execute(delete(SelfAttempt).where(SelfAttempt.at < now - keep))
