"""Tables of the takedown workflow: reported URLs, their fetches, notices and contacts.

* ``TakedownUrl``: a URL someone reported, tied to a case reference, with when it is due
  to be fetched next (``next_check_at``) and the lease of the worker checking it.
* ``TakedownFetch``: one fetch of a URL: status, content type, final URL, the address
  connected to, timing, size and what came of it. Never the bytes, never their hashes.
* ``TakedownNotice``: a takedown request to a host about a URL, with its lifecycle
  (open, sent, acknowledged, removed, closed), when it is next due (a first send, a
  re-notice, an escalation) and the lease of the worker sending it.
* ``TakedownNoticeEntry``: the bank entries a notice matched: how a re-upload at another
  URL finds the earlier notices of the same material (``TakedownLink``).
* ``TakedownSend``: one message of a notice (number ``seq``), written before the message
  leaves and marked sent after: the ledger that keeps sending exactly-once per number.
* ``TakedownContact``: where a host's notices go, by registrable domain, and the second
  contact an overdue notice escalates to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.models import Base, BigId


class TakedownUrl(Base):
    __tablename__ = "takedown_urls"
    __table_args__ = (UniqueConstraint("url_key", name="uq_takedown_url"),
                      Index("ix_takedown_urls_due", "next_check_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the URL as stored: unique without indexing unbounded text
    url_key: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    case_ref: Mapped[str] = mapped_column(String(200))
    added_by: Mapped[str | None] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: new | matched | no-match | error | gone
    state: Mapped[str] = mapped_column(String(16), default="new")
    checks: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TakedownFetch(Base):
    __tablename__ = "takedown_fetches"
    __table_args__ = (Index("ix_takedown_fetches_url", "url_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url_id: Mapped[int] = mapped_column(ForeignKey("takedown_urls.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: match | no-match | gone | error
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    final_url: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    size: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)


class TakedownNotice(Base):
    __tablename__ = "takedown_notices"
    __table_args__ = (Index("ix_takedown_notices_due", "next_due_at"),
                      Index("ix_takedown_notices_domain", "domain"),
                      Index("ix_takedown_notices_url", "url_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url_id: Mapped[int] = mapped_column(ForeignKey("takedown_urls.id", ondelete="RESTRICT"))
    url: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    case_ref: Mapped[str] = mapped_column(String(200))
    #: open | sent | acknowledged | removed | closed
    state: Mapped[str] = mapped_column(String(16), default="open")
    #: [{"scheme": .., "value": ..}] of the matched entries, and their series labels
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    series: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sends: Mapped[int] = mapped_column(Integer, default=0)
    first_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: gone | no-match (what the re-fetch that verified removal found)
    removal: Mapped[str | None] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the last reason the notice could not be sent (no contact, relay down), or None
    problem: Mapped[str | None] = mapped_column(Text)
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TakedownNoticeEntry(Base):
    __tablename__ = "takedown_notice_entries"
    __table_args__ = (Index("ix_takedown_notice_entries_entry", "entry_id"),)

    notice_id: Mapped[int] = mapped_column(
        ForeignKey("takedown_notices.id", ondelete="CASCADE"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, primary_key=True)


class TakedownLink(Base):
    """Notice ``notice_id`` is a re-upload of the material of ``earlier_id``."""

    __tablename__ = "takedown_links"

    notice_id: Mapped[int] = mapped_column(
        ForeignKey("takedown_notices.id", ondelete="CASCADE"), primary_key=True)
    earlier_id: Mapped[int] = mapped_column(
        ForeignKey("takedown_notices.id", ondelete="CASCADE"), primary_key=True)


class TakedownSend(Base):
    __tablename__ = "takedown_sends"
    __table_args__ = (UniqueConstraint("notice_id", "seq", name="uq_takedown_send"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(
        ForeignKey("takedown_notices.id", ondelete="CASCADE"))
    #: 1 for the first notice, 2.. for re-notices and escalations, in order
    seq: Mapped[int] = mapped_column(Integer)
    #: notice | renotice | escalation
    kind: Mapped[str] = mapped_column(String(16))
    to_addr: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(200))
    #: sending (written before the message leaves) | sent
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class TakedownContact(Base):
    __tablename__ = "takedown_contacts"
    __table_args__ = (UniqueConstraint("domain", name="uq_takedown_contact"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320))
    escalation_email: Mapped[str | None] = mapped_column(String(320))
    #: ISO 3166 country of the host: its notices are forwarded to a partner node there
    country: Mapped[str | None] = mapped_column(String(2))


class TakedownForwardCursor(Base):
    """How far this node has pulled the notices a partner forwarded to it: the partner's
    last notice id looked at (``GET /v1/notices/forwarded?after=``)."""

    __tablename__ = "takedown_forward_cursors"

    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    after: Mapped[int] = mapped_column(BigId, default=0)
    pulled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
