"""Tables of federation: what this node shares, the feeds it serves or mirrors, its peers.

* ``ShareRule``: per bank and per peer agency, whether it is shared, which labels go
  along, and whether the peer may pass it on. No row means not shared (deny by default).
* ``Feed``: one signed, hash-chained feed of a bank's changes. A feed is named by its
  *descriptor* (origin agency, origin bank, label fields, re-share flag): every peer with
  the same rule reads the same chain. A node holds feeds it originates (materialised
  lazily from the bank's change log) and feeds it mirrors (stored exactly as received,
  with the origin's signatures, so it can pass them on).
* ``FeedRecord``: one record of a feed, as the exact canonical text that was hashed.
* ``Peer``: a node this node pulls from. Its bearer token lives in
  ``VIGIL_HOME/keys/peers`` (0600), never in the database.
* ``Opinion``: what this agency thinks of an entry of a mirror bank (agree, dispute), kept
  apart from the mirror, which stays exactly what its origin said.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.models import Base, BigId, utcnow


class ShareRule(Base):
    """Bank ``bank_id`` is shared with ``agency``: these label ``fields``, maybe re-shared."""

    __tablename__ = "share_rules"
    __table_args__ = (UniqueConstraint("bank_id", "agency", name="uq_share_rule"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="RESTRICT"))
    agency: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    reshare: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))


class Feed(Base):
    """A feed held by this node: served from its own bank, or mirrored into ``bank_id``."""

    __tablename__ = "feeds"
    __table_args__ = (UniqueConstraint("descriptor", name="uq_feed_descriptor"),
                      Index("ix_feeds_bank", "bank_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: the local bank: the origin bank (``mirror`` false) or the mirror bank (true)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="RESTRICT"))
    mirror: Mapped[bool] = mapped_column(Boolean, default=False)
    #: canonical JSON of {origin, bank, fields, reshare}: the feed's identity
    descriptor: Mapped[str] = mapped_column(String(1000))
    origin: Mapped[str] = mapped_column(String(64))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    #: for a mirror: the peer it is pulled from, when, and the last error (None = healthy)
    peer: Mapped[str | None] = mapped_column(String(100))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class FeedRecord(Base):
    """One record of a feed: the canonical text hashed, its hash and maybe a signature."""

    __tablename__ = "feed_records"

    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="RESTRICT"),
                                         primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(64))
    #: the origin's Ed25519 signature of the checkpoint (feed, seq, hash), where one is
    sig: Mapped[str | None] = mapped_column(String(128))


class Peer(Base):
    """A node this node pulls feeds from (its token is in VIGIL_HOME/keys/peers)."""

    __tablename__ = "peers"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    agency: Mapped[str] = mapped_column(ForeignKey("agencies.code", ondelete="RESTRICT"))
    url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    #: the last opinion id pulled from this peer (opinions about our banks)
    opinions_after: Mapped[int] = mapped_column(BigInteger, default=0)


class Opinion(Base):
    """An agency's opinion of one signal of a bank: ``agree`` or ``dispute`` with a reason.

    Local opinions are on mirror banks (``agency`` = this node's); opinions pulled back
    from peers are on this node's own banks (``agency`` = the peer's).
    """

    __tablename__ = "opinions"
    __table_args__ = (Index("ix_opinions_bank", "bank_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="RESTRICT"))
    agency: Mapped[str] = mapped_column(String(64))
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(1024))
    opinion: Mapped[str] = mapped_column(String(16))  # agree | dispute
    reason: Mapped[str] = mapped_column(Text, default="")
    by: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: for an opinion pulled from a peer: its id there (idempotent re-pulls)
    remote_id: Mapped[int | None] = mapped_column(BigInteger)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
