"""Opinions: what this agency thinks of entries it mirrors (agree, or dispute with a reason).

A mirror bank stays exactly what its origin signed; a local view of an entry is recorded
here instead, so it never alters the mirror and can be shared back: the origin pulls the
opinions about its own banks (``GET /v1/opinions``) at its next sync of this node, and a
dispute shows there next to the entry it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.banks import BankError
from vigil.entry import check_signal
from vigil.exchange.records import Descriptor
from vigil.exchange.rules import mirror_feed
from vigil.store.models import Bank, Entry, utcnow
from vigil.store.models_exchange import Feed, Opinion

KINDS = ("agree", "dispute")


@dataclass(frozen=True, slots=True)
class OpinionInfo:
    id: int
    bank: str
    agency: str
    signal_type: str
    value: str
    opinion: str
    reason: str
    by: str | None
    at: datetime
    #: for an opinion about a mirrored entry: whose bank it is and its name there
    origin: str | None = None
    origin_bank: str | None = None


def record(engine: Engine, bank: str, agency: str, signals: list[tuple[str, str]],
           opinion: str, reason: str = "", by: str | None = None) -> list[OpinionInfo]:
    """Record ``agency``'s opinion of signals of mirror bank ``bank`` (they must be in it)."""
    if opinion not in KINDS:
        raise BankError(f"opinion must be one of {', '.join(KINDS)}, got {opinion!r}")
    if opinion == "dispute" and not reason.strip():
        raise BankError("a dispute needs a reason (what is wrong with the entry)")
    sigs = [check_signal(t, v) for t, v in signals]
    out = []
    with Session(engine) as s, s.begin():
        b = s.scalar(select(Bank).where(Bank.name == bank))
        if b is None or b.agency != agency:
            raise BankError(f"no bank named {bank!r}")
        mf = mirror_feed(s, b.id)
        if mf is None:
            raise BankError(f"bank {bank!r} is this agency's own bank; opinions are about "
                            "entries mirrored from other agencies (edit your own entries)")
        d = Descriptor.parse(mf.descriptor)
        for t, v in sigs:
            found = s.scalar(select(Entry.id).where(Entry.bank_id == b.id,
                                                    Entry.signal_type == t, Entry.value == v))
            if found is None:
                raise BankError(f"bank {bank!r} has no {t} entry with that value")
            o = Opinion(bank_id=b.id, agency=agency, signal_type=t, value=v, opinion=opinion,
                        reason=reason.strip(), by=by, at=utcnow(), extra={})
            s.add(o)
            s.flush()
            out.append(_info(o, b.name, d))
    return out


def _info(o: Opinion, bank: str, d: Descriptor | None) -> OpinionInfo:
    return OpinionInfo(o.id, bank, o.agency, o.signal_type, o.value, o.opinion, o.reason,
                       o.by, o.at, d.origin if d else None, d.bank if d else None)


def of_bank(engine: Engine, bank: str) -> list[OpinionInfo]:
    """Opinions about a bank's entries: ours on a mirror, or peers' on our own bank."""
    with Session(engine) as s:
        b = s.scalar(select(Bank).where(Bank.name == bank))
        if b is None:
            raise BankError(f"no bank named {bank!r}")
        mf = mirror_feed(s, b.id)
        d = Descriptor.parse(mf.descriptor) if mf else None
        return [_info(o, b.name, d) for o in s.scalars(
            select(Opinion).where(Opinion.bank_id == b.id).order_by(Opinion.id))]


def about_origin(engine: Engine, origin: str, after: int, limit: int = 10_000,
                 ) -> list[OpinionInfo]:
    """Local opinions on mirrors of ``origin``'s banks (what ``origin`` may pull back)."""
    out = []
    with Session(engine) as s:
        q = (select(Opinion, Bank, Feed).join(Bank, Bank.id == Opinion.bank_id)
             .join(Feed, (Feed.bank_id == Bank.id) & Feed.mirror.is_(True))
             .where(Feed.origin == origin, Opinion.id > after, Opinion.remote_id.is_(None))
             .order_by(Opinion.id).limit(limit))
        for o, b, f in s.execute(q):
            out.append(_info(o, b.name, Descriptor.parse(f.descriptor)))
    return out


def store_remote(engine: Engine, local: str, from_agency: str,
                 items: list[dict[str, object]]) -> int:
    """Keep opinions a peer holds about this node's banks; returns how many were new."""
    n = 0
    with Session(engine) as s, s.begin():
        for it in items:
            if it.get("origin") != local:
                continue
            b = s.scalar(select(Bank).where(Bank.name == it.get("origin_bank"),
                                            Bank.agency == local))
            if b is None:
                continue
            rid = int(it["id"])  # type: ignore[call-overload]
            if s.scalar(select(Opinion.id).where(Opinion.bank_id == b.id,
                                                 Opinion.agency == from_agency,
                                                 Opinion.remote_id == rid)) is not None:
                continue
            try:
                t, v = check_signal(str(it["signal_type"]), str(it["value"]))
            except ValueError:
                continue
            if it.get("opinion") not in KINDS:
                continue
            s.add(Opinion(bank_id=b.id, agency=from_agency, signal_type=t, value=v,
                          opinion=str(it["opinion"]), reason=str(it.get("reason") or "")[:4000],
                          by=str(it.get("by") or "")[:200] or None,
                          at=datetime.fromisoformat(str(it["at"])), remote_id=rid, extra={}))
            n += 1
    return n
