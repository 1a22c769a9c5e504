"""The exposure ledger of the reviewer workspace: who looked at seized material clearly,
for how long, per day and per category.

Why in the node's store and not in a scan's ``scan.db``: caps on clear viewing are per
person per day, whichever seizure they review; a ledger per scan would reset them at
every new case. The rows hold no picture and no hash: a scan is named by its review id
(a random id kept in its ``scan.db``) and an item by its number in that scan.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.models import Base, BigId


class ReviewExposure(Base):
    """One viewing session below the default blur: a held reveal (``clear``) or a lowered
    blur (``light``). Open while ``ended_at`` is NULL; ``seconds`` is what the server
    counted when it closed it (capped, see ``vigil.review.ledger``)."""

    __tablename__ = "review_exposure"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    scan: Mapped[str] = mapped_column(String(64))
    item: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(8))  # clear | light
    level: Mapped[int] = mapped_column(SmallInteger)
    day: Mapped[str] = mapped_column(String(10))  # UTC date the session started
    category: Mapped[str] = mapped_column(String(40), default="undecided")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (
        Index("ix_review_exposure_reviewer_day", "reviewer", "day"),
        Index("ix_review_exposure_open", "reviewer", "ended_at"),
        Index("ix_review_exposure_item", "scan", "item"),
    )
