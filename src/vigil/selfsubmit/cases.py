"""Self-submitted cases: submit, check status, withdraw; leads; the staff's counts.

A submission is one transaction: the entries in the self-submission bank (with their
change-log rows, which feeds publish), the case row and its entry links all commit
together or not at all (``Banks.apply(before_commit=…)``). A withdrawal tombstones the
case's entries in the same bank, so the removals travel through the existing feeds and
every peer's mirror drops them at its next sync. An entry that another active case also
submitted stays until that case is withdrawn too.

Nothing here tells a caller whether a case exists unless it holds the case's PIN or
recovery key: a wrong PIN and an unknown case get the same answer after the same work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.banks import BankError, Banks, EntryRecord
from vigil.exchange.rules import SELF_SUBMITTED_BANK
from vigil.selfsubmit import keys, pins, throttle
from vigil.selfsubmit.items import CONCERNS, SOURCE, ItemError, check_items, records
from vigil.store.models import Bank, Entry, utcnow
from vigil.store.models_selfsubmit import (
    SelfCase,
    SelfCaseEntry,
    SelfChallenge,
    SelfLead,
)
from vigil.store.models_takedown import TakedownNoticeEntry

#: the node's self-submission bank (created at the first submission); sharing it always
#: carries its tags (``unverified``), see vigil.exchange.rules
BANK = SELF_SUBMITTED_BANK
#: the actor of the bank changes a submission or withdrawal makes
ACTOR = "self-submission"


class CaseError(ValueError):
    """A request that cannot be taken; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, field: str | None, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message, self.code = status, field, message, code


class WrongSecret(CaseError):
    """The case number and PIN (or signature) do not go together; says no more."""

    def __init__(self, message: str = "the case number or PIN is not right") -> None:
        super().__init__(403, None, message, "wrong-secret")


class Throttled(CaseError):
    def __init__(self) -> None:
        super().__init__(429, None, "too many attempts; please wait 15 minutes and try "
                         "again", "throttled")


@dataclass(frozen=True, slots=True)
class Submitted:
    number: str
    pin: str
    items: int
    signals: int


@dataclass(frozen=True, slots=True)
class CaseStatus:
    """What a victim may see: counts only, never where."""

    number: str
    state: str
    items: int
    matches: int
    takedowns: int

    def to_json(self) -> dict[str, Any]:
        return {"case": self.number, "state": self.state, "items": self.items,
                "matches": self.matches, "takedowns": self.takedowns}


@dataclass(frozen=True, slots=True)
class Proof:
    """How a caller proves the case is theirs: a PIN, or a signed challenge."""

    pin: str | None = None
    challenge: str | None = None
    signature: str | None = None


def ensure_bank(engine: Engine, agency: str) -> None:
    banks = Banks(engine, ACTOR)
    if BANK in banks.names():
        return
    try:
        banks.create(BANK, agency, "victims' own hashes (unverified): leads for review only")
    except BankError:
        if BANK not in banks.names():
            raise


def submit(engine: Engine, agency: str, raw_items: list[dict[str, Any]], concern: str,
           consent: bool, public_key: str, remote: str | None,
           now: datetime | None = None) -> Submitted:
    """Take a submission: all of it, or nothing (CaseError says why)."""
    now = now or utcnow()
    if concern not in CONCERNS:
        raise CaseError(422, "concern", f"concern must be one of {', '.join(CONCERNS)}",
                        "invalid")
    if consent is not True:
        raise CaseError(422, "consent", "consent is needed to share these hashes", "consent")
    try:
        public_key = keys.check_public_key(public_key)
        items = check_items(raw_items)
    except keys.KeyError_ as exc:
        raise CaseError(422, "public_key", str(exc), "invalid") from None
    except ItemError as exc:
        raise CaseError(422, exc.field, exc.message, exc.code) from None
    with Session(engine) as s, s.begin():
        key = f"submit:{remote or '-'}"
        if throttle.over(s, key, throttle.SUBMIT, now):
            raise Throttled()
        throttle.count(s, key, now)
        throttle.prune(s, now)
    ensure_bank(engine, agency)
    recs = records(items, concern)
    pin = pins.new_pin()
    pin_hash = pins.hash_pin(pin)
    for _ in range(3):  # a case number already taken: try another
        number = pins.new_case_number()
        try:
            _write(engine, number, pin_hash, public_key, concern, len(items), recs, now)
        except IntegrityError:
            continue
        return Submitted(number, pin, len(items), len(recs))
    raise CaseError(503, None, "could not allocate a case number; try again", "busy")


def _write(engine: Engine, number: str, pin_hash: str, public_key: str, concern: str,
           n_items: int, recs: list[EntryRecord], now: datetime) -> None:
    def link(s: Session) -> None:
        bank_id = s.scalar(select(Bank.id).where(Bank.name == BANK))
        case = SelfCase(number=number, bank_id=bank_id, pin_hash=pin_hash,
                        key_alg=keys.ALG, public_key=public_key, concern=concern,
                        items=n_items, state="active", created_at=now)
        s.add(case)
        s.flush()
        ids = set()
        for t in {r.signal_type for r in recs}:
            values = [r.value for r in recs if r.signal_type == t]
            ids |= set(s.scalars(select(Entry.id).where(
                Entry.bank_id == bank_id, Entry.signal_type == t, Entry.value.in_(values))))
        s.add_all(SelfCaseEntry(case_id=case.id, entry_id=i) for i in sorted(ids))

    Banks(engine, ACTOR).apply(BANK, recs, source=SOURCE, before_commit=link)


def challenge(engine: Engine, number: str, remote: str | None,
              now: datetime | None = None) -> str:
    """A one-time challenge to sign; issued for any case number (reveals nothing)."""
    now = now or utcnow()
    number = pins.normal_case_number(number)
    nonce = keys.new_challenge()
    with Session(engine) as s, s.begin():
        key = f"check:{remote or '-'}"
        if throttle.over(s, key, throttle.CHECKS, now):
            raise Throttled()
        throttle.count(s, key, now)
        s.add(SelfChallenge(nonce=nonce, case_number=number, issued_at=now, used=False))
    return nonce


def _authorise(engine: Engine, number: str, action: str, proof: Proof, remote: str | None,
               now: datetime) -> int:
    """The case's id if ``proof`` is right; WrongSecret (or Throttled) otherwise."""
    by_addr, by_case = f"wrong:{remote or '-'}", f"wrong-case:{number}"
    with Session(engine) as s, s.begin():
        if (throttle.over(s, by_addr, throttle.WRONG_BY_ADDRESS, now)
                or throttle.over(s, by_case, throttle.WRONG_BY_CASE, now)
                or throttle.over(s, f"check:{remote or '-'}", throttle.CHECKS, now)):
            raise Throttled()
        throttle.count(s, f"check:{remote or '-'}", now)
        row = s.execute(select(SelfCase.id, SelfCase.pin_hash, SelfCase.public_key)
                        .where(SelfCase.number == number)).first()
    ok = False
    if proof.pin is not None:
        ok = pins.verify_pin(proof.pin, row.pin_hash if row else None)
    elif proof.challenge and proof.signature:
        with Session(engine) as s, s.begin():
            issued = s.scalar(select(SelfChallenge.issued_at).where(
                SelfChallenge.nonce == proof.challenge[:64],
                SelfChallenge.case_number == number))
            res = s.execute(update(SelfChallenge).where(
                SelfChallenge.nonce == proof.challenge[:64],
                SelfChallenge.case_number == number,
                SelfChallenge.used.is_(False)).values(used=True))
            taken = getattr(res, "rowcount", 0)
        if issued is None or not taken or keys.expired(issued, now):
            _count_wrong(engine, by_addr, by_case, now)
            raise WrongSecret("this signed request was already used or has expired; "
                              "please start again")
        ok = row is not None and keys.verify(row.public_key, action, number,
                                             proof.challenge, proof.signature)
    if not ok or row is None:
        _count_wrong(engine, by_addr, by_case, now)
        raise WrongSecret()
    return int(row.id)


def _count_wrong(engine: Engine, by_addr: str, by_case: str, now: datetime) -> None:
    with Session(engine) as s, s.begin():
        throttle.count(s, by_addr, now)
        throttle.count(s, by_case, now)


def status(engine: Engine, number: str, proof: Proof, remote: str | None,
           now: datetime | None = None) -> CaseStatus:
    number = pins.normal_case_number(number)
    case_id = _authorise(engine, number, "status", proof, remote, now or utcnow())
    return _status(engine, case_id)


def _status(engine: Engine, case_id: int) -> CaseStatus:
    with Session(engine) as s:
        case = s.get(SelfCase, case_id)
        assert case is not None
        entries = select(SelfCaseEntry.entry_id).where(SelfCaseEntry.case_id == case_id)
        matches = s.scalar(select(func.count()).select_from(SelfLead)
                           .where(SelfLead.case_id == case_id)) or 0
        takedowns = s.scalar(select(func.count(func.distinct(TakedownNoticeEntry.notice_id)))
                             .where(TakedownNoticeEntry.entry_id.in_(entries))) or 0
        return CaseStatus(case.number, case.state, case.items, matches, takedowns)


def withdraw(engine: Engine, number: str, proof: Proof, remote: str | None,
             now: datetime | None = None) -> tuple[CaseStatus, int]:
    """Tombstone the case's hashes (those no other active case holds); (status, removed).
    Withdrawing a withdrawn case again changes nothing."""
    now = now or utcnow()
    number = pins.normal_case_number(number)
    case_id = _authorise(engine, number, "withdraw", proof, remote, now)
    with Session(engine) as s:
        state = s.scalar(select(SelfCase.state).where(SelfCase.id == case_id))
        mine = select(SelfCaseEntry.entry_id).where(SelfCaseEntry.case_id == case_id)
        shared = (select(SelfCaseEntry.entry_id).join(SelfCase, SelfCase.id ==
                                                       SelfCaseEntry.case_id)
                  .where(SelfCase.state == "active", SelfCase.id != case_id))
        rows = s.execute(select(Entry.signal_type, Entry.value).where(
            Entry.id.in_(mine), Entry.id.not_in(shared), Entry.removed.is_(False))).all()
    if state == "withdrawn":
        return _status(engine, case_id), 0

    def mark(s: Session) -> None:
        s.execute(update(SelfCase).where(SelfCase.id == case_id)
                  .values(state="withdrawn", withdrawn_at=now))

    res = Banks(engine, ACTOR).apply(
        BANK, [EntryRecord(t, v, op="remove") for t, v in rows], source=SOURCE,
        before_commit=mark)
    return _status(engine, case_id), res.removed


def record_leads(engine: Engine, entry_ids: Iterable[int], found_by: str,
                 now: datetime | None = None) -> int:
    """Count hits on self-submitted entries as leads of their active cases; how many."""
    ids = sorted(set(entry_ids))
    if not ids:
        return 0
    now = now or utcnow()
    n = 0
    with Session(engine) as s, s.begin():
        for i in range(0, len(ids), 500):
            for case_id, entry_id in s.execute(
                    select(SelfCaseEntry.case_id, SelfCaseEntry.entry_id)
                    .join(SelfCase, SelfCase.id == SelfCaseEntry.case_id)
                    .where(SelfCaseEntry.entry_id.in_(ids[i:i + 500]),
                           SelfCase.state == "active")):
                s.add(SelfLead(case_id=case_id, entry_id=entry_id, at=now,
                               found_by=found_by[:100]))
                n += 1
    return n


def list_cases(engine: Engine) -> list[dict[str, Any]]:
    """Every case with counts (never a hash value)."""
    with Session(engine) as s:
        ids = list(s.scalars(select(SelfCase.id).order_by(SelfCase.id)))
    return [staff_view(engine, i) for i in ids]


def find(engine: Engine, number: str) -> int | None:
    with Session(engine) as s:
        return s.scalar(select(SelfCase.id).where(
            SelfCase.number == pins.normal_case_number(number)))


def staff_view(engine: Engine, case_id: int) -> dict[str, Any]:
    st = _status(engine, case_id)
    with Session(engine) as s:
        case = s.get(SelfCase, case_id)
        assert case is not None
        signals = s.scalar(select(func.count()).select_from(SelfCaseEntry)
                           .where(SelfCaseEntry.case_id == case_id)) or 0
        return {**st.to_json(), "concern": case.concern, "signals": signals,
                "key": case.key_alg, "created_at": case.created_at.isoformat(),
                "withdrawn_at": case.withdrawn_at.isoformat() if case.withdrawn_at else None}


def leads(engine: Engine, limit: int = 1000) -> list[dict[str, Any]]:
    """The review queue of hits on self-submitted hashes (newest first): case, when,
    who found it; the entry id leads a reviewer to the bank entry, never a hash here."""
    with Session(engine) as s:
        rows = s.execute(select(SelfLead.id, SelfCase.number, SelfLead.entry_id, SelfLead.at,
                                SelfLead.found_by)
                         .join(SelfCase, SelfCase.id == SelfLead.case_id)
                         .order_by(SelfLead.id.desc()).limit(limit)).all()
    return [{"lead": r.id, "case": r.number, "entry_id": r.entry_id, "at": r.at.isoformat(),
             "found_by": r.found_by} for r in rows]
