"""Tables of victim identification (``vigil.victimid``): the series registry and hit notices.

* ``SeriesEvent``: one signed, hash-chained record of a series registry — this node's own
  (``origin`` is its agency) or a peer's, stored exactly as received. A series' state is
  never stored: it is folded from its events every time it is read, the same way on every
  node, so two nodes holding the same events agree (and a lease expires by the clock).
* ``SeriesNote``: each series' folded note, kept with every change (a cache of the fold).
* ``SeriesCursor``: how far this node pulled one peer's registry chain and hit notices.
* ``SeriesClue``: a free-text clue; local unless a grant names the agency it may go to.
* ``SeriesNotifyRule``: the agencies this node sends hit notices to (deny by default).
* ``SeriesHitOut`` / ``SeriesHitIn``: hit notices queued for a series' origin, and those
  pulled from peers about this node's series. They hold no hash, path or picture.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.models import Base, BigId, utcnow


class SeriesEvent(Base):
    """Record ``seq`` of ``origin``'s registry chain (canonical body text, hash, signature)."""

    __tablename__ = "series_events"
    __table_args__ = (UniqueConstraint("origin", "seq", name="uq_series_event"),
                      Index("ix_series_events_series", "series_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigId)
    series_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, microseconds: sorts as text
    body: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(64))
    sig: Mapped[str | None] = mapped_column(String(128), nullable=True)


class SeriesNote(Base):
    """A series' folded note as of its last record, valid until ``valid_until`` (its first
    lease to end): what a hit reads, one row per series, instead of folding every time.
    Rewritten with every record of the series; ``vigil.victimid`` folds again past it."""

    __tablename__ = "series_notes"

    series_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    note: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[str] = mapped_column(String(40))


class SeriesCursor(Base):
    """The last verified record of ``peer``'s registry chain, and its last hit notice."""

    __tablename__ = "series_cursors"

    peer: Mapped[str] = mapped_column(String(100), primary_key=True)
    agency: Mapped[str] = mapped_column(String(64))
    last_seq: Mapped[int] = mapped_column(BigId, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    hits_after: Mapped[int] = mapped_column(BigId, default=0)
    clues_after: Mapped[int] = mapped_column(BigId, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SeriesClue(Base):
    """A free-text clue on a series. ``origin`` wrote it; ``grants`` (space-separated
    agency codes) may pull it; a clue with no grant never leaves the node."""

    __tablename__ = "series_clues"
    __table_args__ = (UniqueConstraint("origin", "remote_id", name="uq_series_clue"),
                      Index("ix_series_clues_series", "series_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(64))
    remote_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    series_id: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    grants: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Operation(Base):
    """A joint operation: a name, a period, partner agencies and the series it covers
    (space-separated ids; none: every series known here)."""

    __tablename__ = "operations"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    starts: Mapped[str] = mapped_column(String(10))
    ends: Mapped[str] = mapped_column(String(10))
    partners: Mapped[str] = mapped_column(String(1000), default="")
    series: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SeriesNotifyRule(Base):
    """This node may send hit notices to ``agency`` (deny by default: no row, no notice)."""

    __tablename__ = "series_notify_rules"

    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SeriesHitOut(Base):
    """A hit notice this node queued for the origin of a series it found material of."""

    __tablename__ = "series_hits_out"
    __table_args__ = (Index("ix_series_hits_out_origin", "origin", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(64))
    series_id: Mapped[str] = mapped_column(String(100))
    items: Mapped[int] = mapped_column(Integer)
    case_ref: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SeriesHitIn(Base):
    """A hit notice a peer (``finder``) sent about one of this node's series."""

    __tablename__ = "series_hits_in"
    __table_args__ = (UniqueConstraint("finder", "remote_id", name="uq_series_hit_in"),
                      Index("ix_series_hits_in_series", "series_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    finder: Mapped[str] = mapped_column(String(64))
    remote_id: Mapped[int] = mapped_column(BigId)
    series_id: Mapped[str] = mapped_column(String(100))
    items: Mapped[int] = mapped_column(Integer)
    case_ref: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
