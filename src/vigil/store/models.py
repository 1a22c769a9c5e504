"""SQLAlchemy models: banks, their entries, and each bank's append-only change log.

Why a change log beside the entries: other agencies will pull a bank as a feed of
changes after a sequence number, and indexes tail the log to stay current without
rebuilds. So nothing about an entry changes without a ``Change`` row in the same
transaction, and removals are tombstones (``Entry.removed``), never deletes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import expression

#: BIGINT on PostgreSQL, INTEGER (so it is the rowid alias and autoincrements) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of all Vigil tables."""


class Bank(Base):
    """A named list of entries owned by one agency: the unit of sharing."""

    __tablename__ = "banks"
    #: a column's server default is not read back after an insert (``crop_ladder`` is
    #: read only where it is needed)
    __mapper_args__ = {"eager_defaults": False}  # noqa: RUF012 (SQLAlchemy reads it)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    agency: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    default_scheme: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the sequence number of the bank's latest change (0 = no change yet)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: store derived PDQ codes of each banked picture (``vigil.banks.derived``); deferred
    #: and left to its server default, so code reading banks never needs it loaded
    crop_ladder: Mapped[bool] = mapped_column(Boolean, server_default=expression.false(),
                                              deferred=True)


class Entry(Base):
    """A signal in a bank, its labels and provenance. One row per (bank, signal)."""

    __tablename__ = "entries"
    __table_args__ = (
        # (type, value) first: one index keeps an entry unique per bank and serves every
        # lookup by signal across banks (migration 0004 merged two indexes into it)
        UniqueConstraint("signal_type", "value", "bank_id", name="uq_entry_signal"),
        Index("ix_entries_bank_seq", "bank_id", "seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="RESTRICT"))
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(1024))
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    category_scheme: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(16))
    series: Mapped[str | None] = mapped_column(String(200))
    victim_status: Mapped[str] = mapped_column(String(16), default="unknown")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    #: provenance: which agency said this, from which source (file, feed), who added it
    origin_agency: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(300))
    source_id: Mapped[str | None] = mapped_column(String(200))
    added_by: Mapped[str | None] = mapped_column(String(100))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: sequence number of the latest change to this entry in its bank's log
    seq: Mapped[int] = mapped_column(BigInteger)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Change(Base):
    """One record of a bank's append-only change log.

    ``id`` orders all changes of all banks (indexes tail it); ``seq`` orders one bank's
    changes without gaps (feeds publish it).
    """

    __tablename__ = "changes"
    __table_args__ = (UniqueConstraint("bank_id", "seq", name="uq_change_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(8))  # add | update | remove
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="RESTRICT"))
    signal_type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    by: Mapped[str | None] = mapped_column(String(100))
    #: the entry's labels after the change (what a feed record carries)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
