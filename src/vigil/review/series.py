"""Where "add to a series" finds the series that exist: the seam to victim identification.

Today a series is the ``series`` label on bank entries, so the catalogue is the labels of
the bank a review exports to (``BankSeries``). When victim identification keeps series as
records of their own, another ``SeriesCatalog`` answers the same two questions; the review
does not change.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.store.models import Bank, Entry

#: a datalist of more names than this helps nobody; the review can still type any name
MAX_NAMES = 500


class SeriesCatalog(Protocol):
    """The series a reviewer may add items to."""

    def names(self, bank: str) -> list[str]:
        """Existing series names, for the bank the review exports to."""
        ...


class BankSeries:
    """Series as the distinct ``series`` labels of a bank's live entries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def names(self, bank: str) -> list[str]:
        with Session(self.engine) as s:
            rows = s.scalars(
                select(Entry.series).join(Bank, Bank.id == Entry.bank_id)
                .where(Bank.name == bank, Entry.removed.is_(False),
                       Entry.series.is_not(None))
                .distinct().order_by(Entry.series).limit(MAX_NAMES))
            return [r for r in rows if r]
