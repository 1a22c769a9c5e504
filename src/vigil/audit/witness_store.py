"""Where witnessed audit heads are kept (``audit_witnesses``), and for how long.

Every head received is kept for ``KEEP_ALL_DAYS``; older ones are thinned to the newest of
each day. Why keep history at all, not just the newest head: a rewind followed by new
records ("cut 10, append 20") gives a new head that extends the rewritten log, and only an
older head still names a record that is gone. Why thinning is safe: a rewind to any point
removes every record after it, so the newest head taken before the rewind (always kept,
being recent) already shows it; older heads only need to outlive a node's neglect to run
``vigil audit verify``, which a head a day does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.audit.witness import SignedHead
from vigil.store.models import utcnow
from vigil.store.models_node import AuditWitness

KEEP_ALL_DAYS = 7


@dataclass(frozen=True, slots=True)
class Witnessed:
    """A head of ``head.agency``'s log, as held by ``witness`` since ``received_at``."""

    witness: str
    head: SignedHead
    received_at: datetime


def _head(r: AuditWitness) -> SignedHead:
    return SignedHead(r.agency, int(r.head_id), r.head_hash, r.signed_at, r.sig)


def keep(engine: Engine, head: SignedHead, witness: str) -> bool:
    """Keep ``head`` as held by ``witness`` (checked by the caller); False if it was kept
    already. Thins that pair's old heads (see the module's docstring)."""
    now = utcnow()
    try:
        with Session(engine) as s, s.begin():
            if s.scalar(select(AuditWitness.id).where(
                    AuditWitness.agency == head.agency, AuditWitness.witness == witness,
                    AuditWitness.head_id == head.id)) is not None:
                return False
            s.add(AuditWitness(agency=head.agency, witness=witness, head_id=head.id,
                               head_hash=head.hash, signed_at=head.at, sig=head.sig,
                               received_at=now))
            _thin(s, head.agency, witness, now - timedelta(days=KEEP_ALL_DAYS))
    except IntegrityError:
        return False  # kept meanwhile by another worker
    return True


def _thin(s: Session, agency: str, witness: str, before: datetime) -> None:
    rows = s.execute(select(AuditWitness.id, AuditWitness.head_id, AuditWitness.received_at)
                     .where(AuditWitness.agency == agency, AuditWitness.witness == witness,
                            AuditWitness.received_at < before)).all()
    newest: dict[object, tuple[int, int]] = {}  # day -> (head id, row id)
    for rid, hid, at in rows:
        day = at.date()
        if day not in newest or hid > newest[day][0]:
            newest[day] = (hid, rid)
    keep_ids = {rid for _, rid in newest.values()}
    drop = [rid for rid, _, _ in rows if rid not in keep_ids]
    for i in range(0, len(drop), 500):
        s.execute(delete(AuditWitness).where(AuditWitness.id.in_(drop[i:i + 500])))


def held(engine: Engine, agency: str, witness: str | None = None, after_id: int = 0,
         limit: int | None = None) -> list[Witnessed]:
    """Heads of ``agency``'s log kept here (by one ``witness``, or all), by head id."""
    q = select(AuditWitness).where(AuditWitness.agency == agency,
                                   AuditWitness.head_id > after_id)
    if witness is not None:
        q = q.where(AuditWitness.witness == witness)
    q = q.order_by(AuditWitness.head_id, AuditWitness.witness)
    if limit is not None:
        q = q.limit(limit)
    with Session(engine) as s:
        return [Witnessed(r.witness, _head(r), r.received_at) for r in s.scalars(q)]


def newest(engine: Engine, agency: str, witness: str) -> SignedHead | None:
    """The furthest head of ``agency``'s log that ``witness`` holds here."""
    with Session(engine) as s:
        r = s.scalar(select(AuditWitness).where(AuditWitness.agency == agency,
                                                AuditWitness.witness == witness)
                     .order_by(AuditWitness.head_id.desc()).limit(1))
        return None if r is None else _head(r)
