"""Self-submitted cases: a victim's own hashes, their case number, PIN and recovery key.

What is here and what is not (DESIGN.md, "data that may and may not travel"): the rows
hold the case number, a slow salted hash of the PIN (never the PIN), the public half of
the case's recovery key, the category of concern, and which bank entries the case's
hashes are. No picture ever reaches the node, and no contact detail is asked for. The
hashes themselves live in the self-submission bank (``Entry`` rows), like any other
entry, so feeds carry them and their withdrawal tombstones.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.models import Base, BigId


class SelfCase(Base):
    """One victim's submission: ``active`` until withdrawn."""

    __tablename__ = "self_cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="RESTRICT"))
    #: ``scrypt$N$r$p$salt$digest`` (vigil.selfsubmit.secrets)
    pin_hash: Mapped[str] = mapped_column(String(300))
    key_alg: Mapped[str] = mapped_column(String(32))
    #: the recovery key's public half, SubjectPublicKeyInfo DER as base64
    public_key: Mapped[str] = mapped_column(Text)
    concern: Mapped[str] = mapped_column(String(32))
    items: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | withdrawn
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)


class SelfCaseEntry(Base):
    """Which bank entries a case submitted (an entry may belong to several cases)."""

    __tablename__ = "self_case_entries"

    case_id: Mapped[int] = mapped_column(ForeignKey("self_cases.id", ondelete="RESTRICT"),
                                         primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="RESTRICT"),
                                          primary_key=True)
    __table_args__ = (Index("ix_self_case_entries_entry", "entry_id"),)


class SelfLead(Base):
    """A hit on a case's hash: counted for the victim's status, never where it was."""

    __tablename__ = "self_leads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("self_cases.id", ondelete="RESTRICT"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="RESTRICT"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: who found it (``vigil match`` and its operator); stays on this node
    found_by: Mapped[str] = mapped_column(String(100))
    __table_args__ = (Index("ix_self_leads_case", "case_id"),)


class SelfChallenge(Base):
    """A one-time challenge for a signed status check or withdrawal (replays refused)."""

    __tablename__ = "self_challenges"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class SelfAttempt(Base):
    """One counted request of a rate limit (by address or case); old rows are pruned."""

    __tablename__ = "self_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: ``submit:ADDRESS``, ``pin:ADDRESS``, ``case:NUMBER`` …
    key: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_self_attempts_key_at", "key", "at"),)
