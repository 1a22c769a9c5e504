"""Sharing rules: which bank goes to which peer agency, with which labels, passed on or not.

Deny by default: a bank with no rule for an agency is not in that agency's feed list and
its feed answers 403. A mirror bank (pulled from a peer) can be passed on only if its
origin allowed it, and only as the origin signed it: its label fields cannot be changed
here, because the origin's signatures cover them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from vigil.banks import BankError
from vigil.exchange.records import DEFAULT_FIELDS, SHAREABLE_FIELDS, Descriptor
from vigil.node import check_code
from vigil.store.models import Bank, utcnow
from vigil.store.models_exchange import Feed, ShareRule


@dataclass(frozen=True, slots=True)
class RuleInfo:
    bank: str
    agency: str
    fields: tuple[str, ...]
    reshare: bool
    created_at: datetime
    created_by: str | None


def check_fields(fields: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Validate label field names; None means the default (category only)."""
    if fields is None:
        return DEFAULT_FIELDS
    out = sorted({f.strip() for f in fields if f.strip()})
    bad = [f for f in out if f not in SHAREABLE_FIELDS]
    if bad:
        raise BankError(f"unknown label field(s) {', '.join(bad)}; shareable: "
                        f"{', '.join(SHAREABLE_FIELDS)}")
    return tuple(out)


def _bank(s: Session, name: str) -> Bank:
    b = s.scalar(select(Bank).where(Bank.name == name))
    if b is None:
        raise BankError(f"no bank named {name!r}")
    return b


def mirror_feed(s: Session, bank_id: int) -> Feed | None:
    """The feed a mirror bank is pulled from (None for a bank of this node)."""
    return s.scalar(select(Feed).where(Feed.bank_id == bank_id, Feed.mirror.is_(True)))


def share(engine: Engine, bank: str, agency: str, fields: list[str] | None = None,
          reshare: bool = False, by: str | None = None) -> RuleInfo:
    """Share ``bank`` with ``agency`` (create or replace the rule)."""
    agency = check_code(agency)
    with Session(engine) as s, s.begin():
        b = _bank(s, bank)
        if agency == b.agency:
            raise BankError(f"{agency} owns bank {bank!r}; sharing is with other agencies")
        mf = mirror_feed(s, b.id)
        if mf is not None:
            d = Descriptor.parse(mf.descriptor)
            if not d.reshare:
                raise BankError(f"bank {bank!r} mirrors {d}; {d.origin} did not allow "
                                "passing it on")
            if fields is not None and tuple(sorted(fields)) != d.fields:
                raise BankError(f"bank {bank!r} mirrors {d} and is passed on as {d.origin} "
                                f"signed it (labels: {', '.join(d.fields) or 'none'}); "
                                "its label fields cannot be changed")
            use_fields, use_reshare = d.fields, d.reshare
        else:
            use_fields, use_reshare = check_fields(fields), reshare
        rule = s.scalar(select(ShareRule).where(ShareRule.bank_id == b.id,
                                                ShareRule.agency == agency))
        if rule is None:
            rule = ShareRule(bank_id=b.id, agency=agency)
            s.add(rule)
        rule.fields, rule.reshare = list(use_fields), use_reshare
        rule.created_at, rule.created_by = utcnow(), by
        s.flush()
        return RuleInfo(b.name, agency, use_fields, use_reshare, rule.created_at, by)


def unshare(engine: Engine, bank: str, agency: str) -> bool:
    """Stop sharing ``bank`` with ``agency``; False if it was not shared with it.

    What the peer already pulled stays with it (nothing can be taken back over the
    network); its next sync of this feed is refused.
    """
    with Session(engine) as s, s.begin():
        b = _bank(s, bank)
        res = s.execute(delete(ShareRule).where(ShareRule.bank_id == b.id,
                                                ShareRule.agency == agency))
        return bool(res.rowcount)


def rules(engine: Engine, bank: str | None = None, agency: str | None = None,
          owner: str | None = None) -> list[RuleInfo]:
    """Sharing rules, optionally of one bank, one peer agency, or banks of one owner."""
    with Session(engine) as s:
        q = (select(ShareRule, Bank).join(Bank, Bank.id == ShareRule.bank_id)
             .order_by(Bank.name, ShareRule.agency))
        if bank is not None:
            q = q.where(Bank.id == _bank(s, bank).id)
        if agency is not None:
            q = q.where(ShareRule.agency == agency)
        if owner is not None:
            q = q.where(Bank.agency == owner)
        return [RuleInfo(b.name, r.agency, tuple(r.fields), r.reshare, r.created_at,
                         r.created_by) for r, b in s.execute(q)]


@dataclass(frozen=True, slots=True)
class MirrorInfo:
    """Where a mirror bank comes from and how current it is."""

    origin: str
    origin_bank: str
    fields: tuple[str, ...]
    reshare: bool
    peer: str | None
    last_seq: int
    synced_at: datetime | None
    active: bool
    error: str | None


def mirror_info(engine: Engine, bank: str) -> MirrorInfo | None:
    """The provenance and sync state of mirror bank ``bank`` (None for a local bank)."""
    with Session(engine) as s:
        f = mirror_feed(s, _bank(s, bank).id)
        if f is None:
            return None
        d = Descriptor.parse(f.descriptor)
        return MirrorInfo(d.origin, d.bank, d.fields, d.reshare, f.peer, f.last_seq,
                          f.synced_at, f.active, f.error)


def mirror_names(engine: Engine) -> dict[str, str]:
    """Local mirror bank name -> ``ORIGIN/bank`` it mirrors."""
    with Session(engine) as s:
        rows = s.execute(select(Bank.name, Feed.descriptor)
                         .join(Feed, (Feed.bank_id == Bank.id) & Feed.mirror.is_(True))).all()
    return {name: str(Descriptor.parse(d)) for name, d in rows}
