"""Cutting the audit log's tail: caught by the keyed anchor when done without the key, and
by peers' witnessed heads even when done with it (issue 15, point 7). On SQLite and
PostgreSQL, by tampering with the store and the files directly."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from vigil.audit import AuditLog, SignedHead, check_head, read_anchor, sign_head, witness_store
from vigil.audit.anchor import AnchorFile
from vigil.audit.records import ANCHOR_BYTES
from vigil.node import audit_key, init_node, signing_key
from vigil.store.models import utcnow
from vigil.store.models_node import AuditHead, AuditRecord, AuditWitness

SG = "SG-SPF"


@pytest.fixture
def log(engine: Engine, tmp_path: Path) -> AuditLog:
    init_node(engine, tmp_path, SG, "Singapore Police Force", "SG")
    audit = AuditLog(engine, audit_key(tmp_path), tmp_path / "audit")
    for i in range(10):
        audit.append("bank.add", agency=SG, actor=f"{SG}/curator", target="csam",
                     detail={"added": i})
    assert audit.verify().ok
    return audit


def _cut(log: AuditLog, keep: int) -> None:
    """Delete the records after ``keep`` and point the head row at ``keep``: what the
    issue's attacker did (the head row needs no key)."""
    with Session(log.engine) as s, s.begin():
        last = s.scalar(select(AuditRecord).where(AuditRecord.id == keep))
        assert last is not None
        s.execute(delete(AuditRecord).where(AuditRecord.id > keep))
        s.execute(update(AuditHead).values(last_id=keep, last_hash=last.hash))


def _problems(log: AuditLog, **kw: object) -> str:
    rep = log.verify(**kw)  # type: ignore[arg-type]
    assert not rep.ok, "the rewind went unnoticed"
    return " | ".join(rep.problems)


def test_a_cut_with_the_anchor_rewritten_without_the_key_is_detected(log: AuditLog) -> None:
    """The issue's repro: delete the last rows, rewrite anchor.json and the head row."""
    assert log.anchor_dir is not None
    _cut(log, 6)
    kept = log.records(after_id=5)[0]
    anchor = log.anchor_dir / "anchor.json"
    for forged in ({"id": 6, "hash": kept.hash},  # the old, unkeyed format
                   {"id": 6, "hash": kept.hash, "at": "2026-12-01T00:00:00.000000Z",
                    "mac": "0" * 64}):  # a keyed-looking one, MAC made up
        anchor.write_text(json.dumps(forged).ljust(ANCHOR_BYTES - 1) + "\n")
        assert "anchor file" in _problems(log)


def test_an_anchor_that_does_not_verify_is_kept_as_evidence(log: AuditLog) -> None:
    assert log.anchor_dir is not None
    anchor = log.anchor_dir / "anchor.json"
    forged = json.dumps({"id": 10, "hash": "a" * 64, "at": "2026-12-01T00:00:00.000000Z",
                         "mac": "b" * 64})
    anchor.write_text(forged.ljust(ANCHOR_BYTES - 1) + "\n")
    log.append("bank.add", agency=SG, detail={"added": 1})  # a new process's append
    fresh = AuditLog(log.engine, log._key, log.anchor_dir)
    fresh.append("bank.add", agency=SG, detail={"added": 2})
    assert json.loads(anchor.read_text())["mac"] == "b" * 64  # never overwritten
    assert "MAC does not verify" in _problems(fresh)


def test_the_anchor_is_keyed_and_moves_forward(log: AuditLog) -> None:
    assert log.anchor_dir is not None
    a = read_anchor(log.anchor_dir)
    assert a is not None and a.id == 10 and a.mac is not None and a.at is not None
    AnchorFile(log.anchor_dir, b"another key").advance(11, "c" * 64)  # cannot check it:
    assert read_anchor(log.anchor_dir) == a  # leaves it alone
    log.append("bank.add", agency=SG, detail={"added": 11})
    b = read_anchor(log.anchor_dir)
    assert b is not None and b.id == 11 and b.mac != a.mac and log.verify().ok


def _rewind_with_the_key(log: AuditLog, keep: int) -> None:
    """An insider holding the audit key: cut the log, fix the head row and re-anchor with
    a valid MAC. The log's own checks then pass."""
    assert log.anchor_dir is not None
    _cut(log, keep)
    (log.anchor_dir / "anchor.json").unlink()
    last = log.records(after_id=keep - 1)[0]
    AnchorFile(log.anchor_dir, log._key).advance(keep, last.hash)


def _witnessed(log: AuditLog, home: Path, by: str = "HK-POL") -> SignedHead:
    """The head a peer kept when it synced (signed by this node's key)."""
    last_id, mac = log.head()
    head = sign_head(signing_key(home), SG, last_id, mac)
    assert witness_store.keep(log.engine, head, by)
    return head


def test_a_rewind_with_the_key_is_caught_by_a_witnessed_head(log: AuditLog,
                                                              tmp_path: Path) -> None:
    head = _witnessed(log, tmp_path)
    public = signing_key(tmp_path).public_key()
    _rewind_with_the_key(log, 7)
    assert log.verify().ok  # the limit of a log that is its own only witness
    held = [(w.witness, w.head) for w in witness_store.held(log.engine, SG)]
    p = _problems(log, witnessed=held, public_key=public)
    assert f"the head HK-POL witnessed at {head.at} (record 10)" in p
    assert "the log now ends at record 7" in p
    # cut, then append past the witnessed head: the record at 10 is not the one seen
    for i in range(5):
        log.append("bank.add", agency=SG, detail={"added": 100 + i})
    p = _problems(log, witnessed=held, public_key=public)
    assert "record 10 is not the record HK-POL saw" in p


def test_an_intact_log_passes_its_witnessed_heads(log: AuditLog, tmp_path: Path) -> None:
    public = signing_key(tmp_path).public_key()
    _witnessed(log, tmp_path)
    log.append("bank.add", agency=SG, detail={"added": 11})
    _witnessed(log, tmp_path, by="KR-KNPA")
    held = [(w.witness, w.head) for w in witness_store.held(log.engine, SG)]
    rep = log.verify(witnessed=held, public_key=public)
    assert rep.ok, rep.problems
    assert rep.witnessed == {"HK-POL": 1, "KR-KNPA": 1}


def test_a_forged_witnessed_copy_is_reported(log: AuditLog, tmp_path: Path) -> None:
    head = _witnessed(log, tmp_path)
    forged = SignedHead(head.agency, head.id, "f" * 64, head.at, head.sig)
    assert not check_head(forged, signing_key(tmp_path).public_key())
    p = _problems(log, witnessed=[("HK-POL", forged)],
                  public_key=signing_key(tmp_path).public_key())
    assert "does not verify against this node's key" in p


def test_witnessed_heads_are_kept_once_and_thinned_to_one_a_day(engine: Engine) -> None:
    key = Ed25519PrivateKey.generate()  # HK's node key
    heads = [sign_head(key, "HK-POL", i, f"{i:064x}") for i in range(1, 32)]
    for h in heads[:30]:
        assert witness_store.keep(engine, h, SG)
    assert not witness_store.keep(engine, heads[0], SG)  # the same head again: kept once
    # heads 1-10 arrived 9 days ago, 11-20 8 days ago (around noon), 21-30 3 days ago
    noon = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    with Session(engine) as s, s.begin():
        for i in range(30):
            at = (noon - timedelta(days=9 - i // 10, minutes=-i) if i < 20
                  else utcnow() - timedelta(days=3))
            s.execute(update(AuditWitness).where(AuditWitness.head_id == i + 1)
                      .values(received_at=at))
    witness_store.keep(engine, heads[30], SG)  # a new head thins the old ones
    kept = [w.head.id for w in witness_store.held(engine, "HK-POL", SG)]
    assert kept == [10, 20, *range(21, 32)]  # the newest of each old day, every recent one
    assert witness_store.newest(engine, "HK-POL", SG) == heads[30]


@pytest.mark.parametrize("bad", [
    {}, {"agency": "sg", "id": 1, "hash": "a" * 64, "at": "2026-12-01T00:00:00.000000Z",
         "sig": "b" * 128},
    {"agency": "SG-SPF", "id": -1, "hash": "a" * 64, "at": "2026-12-01T00:00:00.000000Z",
     "sig": "b" * 128},
    {"agency": "SG-SPF", "id": True, "hash": "a" * 64, "at": "2026-12-01T00:00:00.000000Z",
     "sig": "b" * 128},
    {"agency": "SG-SPF", "id": 1, "hash": "A" * 64, "at": "2026-12-01T00:00:00.000000Z",
     "sig": "b" * 128},
    {"agency": "SG-SPF", "id": 1, "hash": "a" * 64, "at": "yesterday", "sig": "b" * 128},
    {"agency": "SG-SPF", "id": 1, "hash": "a" * 64, "at": "2026-12-01T00:00:00.000000Z",
     "sig": "b" * 4000},
    [1, 2, 3],
])
def test_a_malformed_head_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match="audit head"):
        SignedHead.parse(bad)
