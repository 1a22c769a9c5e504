"""Tables of a node: its agencies, principals, their tokens, and the audit log.

Kept apart from the bank tables (``models.py``) because they belong to the service, not
to the bank domain, but on the same ``Base`` metadata so one Alembic history covers all.

* ``Agency``: the node's own agency (``local``) and agencies whose principals it serves.
  The node's Ed25519 *public* key is here; the private key never enters the database.
* ``Principal``: a user or service of an agency, with roles.
* ``Token``: only the SHA-256 of a bearer token is stored (a database dump gives no
  usable credential), with expiry and revocation.
* ``AuditRecord`` / ``AuditHead``: the append-only, hash-chained audit log and the one
  row whose lock serialises appends (so ids are gap-free and in chain order).
* ``AuditWitness``: signed audit heads kept as witnesses (peers' heads this node saw, and
  this node's heads its peers saw and handed back), so a rewound log is detected.
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
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.models import Base, BigId, utcnow


class Agency(Base):
    """An agency known to this node; exactly one is ``local`` (the node's own)."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Ed25519 public key (raw 32 bytes, hex); the private key lives in VIGIL_HOME/keys
    public_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Principal(Base):
    """A user or a service of an agency; ``roles`` is a list of role names."""

    __tablename__ = "principals"
    __table_args__ = (UniqueConstraint("agency", "name", name="uq_principal_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agency: Mapped[str] = mapped_column(ForeignKey("agencies.code", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="user")  # user | service
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))


class Token(Base):
    """A bearer token of a principal, stored as the SHA-256 of the token only."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id", ondelete="RESTRICT"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditRecord(Base):
    """One audit record. ``hash`` chains it to the record before (``prev_hash``).

    Ids are handed out by ``AuditHead`` (gap-free), so a deleted record shows as a gap
    and as a broken chain. ``detail`` holds counts and keyed digests, never signals.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_action", "action"), Index("ix_audit_at", "at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    agency: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | failed
    target: Mapped[str | None] = mapped_column(String(300))
    remote: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row (id 1) naming the last audit record; appends lock it first."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class AuditWitness(Base):
    """A signed audit head kept as a witness: ``agency``'s head, held by ``witness``.

    Two kinds of rows: heads of peers this node fetched when syncing from them (``witness``
    is this node's agency), and heads of this node that peers witnessed and handed back
    (``witness`` is the peer's agency). ``signed_at`` is the time text exactly as signed.
    """

    __tablename__ = "audit_witnesses"
    __table_args__ = (UniqueConstraint("agency", "witness", "head_id", name="uq_audit_witness"),
                      Index("ix_audit_witness_received", "agency", "witness", "received_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agency: Mapped[str] = mapped_column(String(64))
    witness: Mapped[str] = mapped_column(String(64))
    head_id: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[str] = mapped_column(String(40))
    sig: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
