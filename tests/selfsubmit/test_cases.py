"""Cases on the store (SQLite and PostgreSQL): one transaction per submission, PIN and
recovery-key proofs, withdrawal tombstones, rate limits, leads."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.selfsubmit.helpers import RecoveryKey, item
from vigil.banks import Banks
from vigil.selfsubmit import BANK, cases, pins
from vigil.selfsubmit.cases import CaseError, Proof, Throttled, WrongSecret
from vigil.store.models import Entry
from vigil.store.models_selfsubmit import SelfCase

AGENCY = "SG-SPF"


def _submit(engine: Engine, key: RecoveryKey, *items: dict[str, object],
            remote: str = "192.0.2.1") -> cases.Submitted:
    return cases.submit(engine, AGENCY, list(items), "under18", True, key.public, remote)


def _live(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Entry).where(
            Entry.removed.is_(False))) or 0


def test_submit_status_withdraw_with_pin(engine: Engine) -> None:
    key = RecoveryKey()
    done = _submit(engine, key, item(1), item(2))
    assert done.number.startswith("SS-") and len(done.pin) == pins.PIN_DIGITS
    assert (done.items, done.signals) == (2, 6)
    stored = Banks(engine).list()
    assert [(b.name, b.entries) for b in stored] == [(BANK, 6)]
    with Session(engine) as s:
        case = s.scalar(select(SelfCase))
        assert case is not None and done.pin not in case.pin_hash
        assert case.pin_hash.startswith("scrypt$")
    st = cases.status(engine, done.number.lower(), Proof(pin=done.pin), "192.0.2.1")
    assert st.to_json() == {"case": done.number, "state": "active", "items": 2, "matches": 0,
                            "takedowns": 0}
    # a hit on a case's entry is a lead of that case
    with Session(engine) as s:
        entry_id = s.scalar(select(Entry.id).where(Entry.signal_type == "pdq").limit(1))
    assert cases.record_leads(engine, [entry_id], "test") == 1
    assert cases.status(engine, done.number, Proof(pin=done.pin), None).matches == 1
    st, removed = cases.withdraw(engine, done.number, Proof(pin=done.pin), None)
    assert (st.state, removed, _live(engine)) == ("withdrawn", 6, 0)
    # withdrawing again changes nothing; a withdrawn case collects no more leads
    assert cases.withdraw(engine, done.number, Proof(pin=done.pin), None)[1] == 0
    assert cases.record_leads(engine, [entry_id], "test") == 0


def test_wrong_pin_and_unknown_case_look_the_same_and_are_rate_limited(engine: Engine) -> None:
    done = _submit(engine, RecoveryKey(), item(1))
    answers = []
    for number in (done.number, "SS-AAAA-AAAA"):
        with pytest.raises(WrongSecret) as exc:
            cases.status(engine, number, Proof(pin="0000000000"), "192.0.2.9")
        answers.append((exc.value.status, exc.value.message))
    assert answers[0] == answers[1] == (403, "the case number or PIN is not right")
    for _ in range(4):
        with pytest.raises(WrongSecret):
            cases.status(engine, done.number, Proof(pin="1111111111"), "192.0.2.10")
    # five wrong PINs for the case: even the right PIN waits now, from any address
    with pytest.raises(Throttled):
        cases.status(engine, done.number, Proof(pin=done.pin), "192.0.2.11")


def test_recovery_key_signs_a_one_time_challenge(engine: Engine) -> None:
    key = RecoveryKey()
    done = _submit(engine, key, item(1))
    ch = cases.challenge(engine, done.number, None)
    sig = key.sign("status", done.number, ch)
    assert cases.status(engine, done.number, Proof(challenge=ch, signature=sig), None).items == 1
    with pytest.raises(WrongSecret, match="already used"):  # a replay
        cases.status(engine, done.number, Proof(challenge=ch, signature=sig), None)
    ch = cases.challenge(engine, done.number, None)
    with pytest.raises(WrongSecret):  # signed for another action
        cases.withdraw(engine, done.number,
                       Proof(challenge=ch, signature=key.sign("status", done.number, ch)), None)
    with pytest.raises(WrongSecret):  # another key
        ch = cases.challenge(engine, done.number, None)
        cases.withdraw(engine, done.number, Proof(
            challenge=ch, signature=RecoveryKey().sign("withdraw", done.number, ch)), None)
    ch = cases.challenge(engine, done.number, None)
    w = Proof(challenge=ch, signature=key.sign("withdraw", done.number, ch))
    assert cases.withdraw(engine, done.number, w, None)[1] == 3
    with pytest.raises(WrongSecret, match="already used"):
        cases.withdraw(engine, done.number, w, None)


def test_an_entry_two_cases_share_stays_until_both_withdraw(engine: Engine) -> None:
    a = _submit(engine, RecoveryKey(), item(1), item(2))
    b = _submit(engine, RecoveryKey(), item(2), item(3))
    assert _live(engine) == 9
    assert cases.withdraw(engine, a.number, Proof(pin=a.pin), None)[1] == 3
    assert _live(engine) == 6
    assert cases.withdraw(engine, b.number, Proof(pin=b.pin), None)[1] == 6
    assert _live(engine) == 0


@pytest.mark.parametrize(("items", "code", "field"), [
    ([item(1, quality=30)], "flat", "items[0].quality"),
    ([item(i) for i in range(21)], "too-many", "items"),
    ([], "empty", "items"),
    ([{**item(1), "md5": "zz"}], "invalid", "items[0].md5"),
    ([{"kind": "pdf"}], "invalid", "items[0].kind"),
])
def test_bad_submissions_are_refused_whole(engine: Engine, items: list[dict[str, object]],
                                           code: str, field: str) -> None:
    with pytest.raises(CaseError) as exc:
        _submit(engine, RecoveryKey(), *items)
    assert (exc.value.code, exc.value.field) == (code, field)
    assert _live(engine) == 0
    if code == "flat":
        assert "too plain" in exc.value.message


def test_a_submission_is_one_transaction(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                         ) -> None:
    first = _submit(engine, RecoveryKey(), item(1))
    # every case number the node draws is taken: the entries written before the case row
    # must go too
    monkeypatch.setattr(pins, "new_case_number", lambda: first.number)
    with pytest.raises(CaseError, match="case number"):
        _submit(engine, RecoveryKey(), item(5), item(6))
    assert _live(engine) == 3
    assert Banks(engine).get(BANK).last_seq == 3


def test_submissions_per_address_are_limited(engine: Engine) -> None:
    for i in range(5):
        _submit(engine, RecoveryKey(), item(i), remote="198.51.100.7")
    with pytest.raises(Throttled):
        _submit(engine, RecoveryKey(), item(9), remote="198.51.100.7")
    _submit(engine, RecoveryKey(), item(9), remote="198.51.100.8")


def test_consent_concern_and_key_are_required(engine: Engine) -> None:
    key = RecoveryKey()
    with pytest.raises(CaseError, match="consent"):
        cases.submit(engine, AGENCY, [item(1)], "under18", False, key.public, None)
    with pytest.raises(CaseError, match="concern"):
        cases.submit(engine, AGENCY, [item(1)], "other", True, key.public, None)
    with pytest.raises(CaseError, match=r"P-256|public key"):
        cases.submit(engine, AGENCY, [item(1)], "adult", True, "AAAA", None)
