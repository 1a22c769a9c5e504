"""The audit chain: every edit, deletion, reordering or truncation is found by verify,
by tampering with the database directly; and the CLI reports it with exit status 1."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from vigil.audit import AuditLog, read_anchor
from vigil.audit.records import ANCHOR_BYTES
from vigil.cli import app
from vigil.node import NodeError, audit_key, init_node
from vigil.store.models_node import AuditHead, AuditRecord, Token


@pytest.fixture
def log(engine: Engine, tmp_path: Path) -> AuditLog:
    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    audit = AuditLog(engine, audit_key(tmp_path), tmp_path / "audit")
    for i in range(6):
        audit.append("match", agency="SG-SPF", actor="SG-SPF/a", remote="127.0.0.1",
                     detail={"signals": i + 1, "matched": i % 2,
                             "digest": audit.digest_signals([("md5", f"{i:032x}")])})
    assert audit.verify().ok
    return audit


def _problems(log: AuditLog) -> str:
    rep = log.verify()
    assert not rep.ok
    return " | ".join(rep.problems)


def test_edit_is_detected(log: AuditLog) -> None:
    with Session(log.engine) as s, s.begin():
        s.execute(update(AuditRecord).where(AuditRecord.id == 3)
                  .values(detail={"signals": 999, "matched": 0}))
    assert "record 3: content does not match" in _problems(log)


def test_edit_of_actor_with_recomputed_plain_hash_is_detected(log: AuditLog) -> None:
    """Without the node key, the MAC cannot be recomputed: any field edit shows."""
    with Session(log.engine) as s, s.begin():
        s.execute(update(AuditRecord).where(AuditRecord.id == 2).values(actor="SG-SPF/b"))
    assert "record 2" in _problems(log)


def test_deletion_is_detected(log: AuditLog) -> None:
    with Session(log.engine) as s, s.begin():
        s.execute(delete(AuditRecord).where(AuditRecord.id == 4))
    p = _problems(log)
    assert "record 5: expected id 4" in p and "does not chain" in p


def test_reordering_is_detected(log: AuditLog) -> None:
    with Session(log.engine) as s, s.begin():
        a, b = (s.get(AuditRecord, i) for i in (2, 5))
        assert a is not None and b is not None
        fa = {c: getattr(a, c) for c in ("at", "detail", "prev_hash", "hash")}
        fb = {c: getattr(b, c) for c in ("at", "detail", "prev_hash", "hash")}
        s.execute(update(AuditRecord).where(AuditRecord.id == 2).values(**fb))
        s.execute(update(AuditRecord).where(AuditRecord.id == 5).values(**fa))
    assert "record 2" in _problems(log)


def test_truncation_is_detected_by_head_and_anchor(log: AuditLog) -> None:
    with Session(log.engine) as s, s.begin():
        s.execute(delete(AuditRecord).where(AuditRecord.id >= 5))
    assert "head names record 6" in _problems(log)
    with Session(log.engine) as s, s.begin():  # a careful forger fixes the head row too
        last = s.scalar(select(AuditRecord).where(AuditRecord.id == 4))
        assert last is not None
        s.execute(update(AuditHead).values(last_id=4, last_hash=last.hash))
    assert "anchor file names record 6" in _problems(log)


def test_anchor_is_written_in_place_and_never_goes_back(log: AuditLog, tmp_path: Path,
                                                       engine: Engine) -> None:
    """Two logs on one folder stand for two worker processes: the anchor only moves
    forward whoever writes it, and one written by an older Vigil (a longer file, as the
    rename-based writer left) is overwritten whole, not left with a tail of old bytes."""
    folder = tmp_path / "audit"
    def anchored() -> tuple[int, str] | None:
        a = read_anchor(folder)
        return None if a is None else (a.id, a.hash)

    assert anchored() == (6, log.records(after_id=5)[0].hash)
    other = AuditLog(engine, audit_key(tmp_path), folder)
    other._anchor(3, "b" * 64)  # an older batch committing late: ignored
    assert anchored() == (6, log.records(after_id=5)[0].hash)
    other._anchor(1_000_000_007, "c" * 64)
    log._anchor(8, "d" * 64)  # this one had seen 6 only: it must read before writing
    assert anchored() == (1_000_000_007, "c" * 64)
    (folder / "anchor.json").write_text('{"id": 9, "hash": "' + "e" * 64 + '"}' + " " * 500)
    AuditLog(engine, audit_key(tmp_path), folder)._anchor(10, "f" * 64)
    assert anchored() == (10, "f" * 64)
    assert (folder / "anchor.json").stat().st_size == ANCHOR_BYTES


def test_forged_append_without_key_is_detected(log: AuditLog, tmp_path: Path) -> None:
    forger = AuditLog(log.engine, b"not the node key", None)
    forger.append("match", detail={"signals": 1})
    assert "record 7: content does not match" in _problems(log)


def test_concurrent_appends_keep_one_chain(log: AuditLog) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: log.append("bank.add", detail={"i": i}), range(80)))
    rep = log.verify()
    assert rep.ok, rep.problems
    assert rep.records == 86 and rep.last_id == 86


def test_cli_verify_and_list(engine: Engine, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    monkeypatch.setenv("VIGIL_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    r = runner.invoke(app, ["init", "--agency", "SG-SPF", "--name", "SPF",
                            "--jurisdiction", "sg"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("vgl_")
    r = runner.invoke(app, ["init", "--agency", "SG-SPF", "--name", "SPF",
                            "--jurisdiction", "SG"])
    assert r.exit_code == 1 and "already initialised" in r.output
    with Session(engine) as s:  # only the token's hash is stored
        assert token not in str([t.token_hash for t in s.scalars(select(Token))])
    keys = tmp_path / "keys"
    for name in ("node.key", "audit.key"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    assert runner.invoke(app, ["user", "create", "ana", "--role", "analyst"]).exit_code == 0
    r = runner.invoke(app, ["token", "create", "ana", "--days", "3"])
    assert r.exit_code == 0 and r.stdout.strip().startswith("vgl_")
    assert runner.invoke(app, ["token", "revoke", "2"]).exit_code == 0
    r = runner.invoke(app, ["audit", "verify"])
    # init (the node, its admin, the admin's token), user create, token create, token revoke
    assert r.exit_code == 0 and "intact: 6 records" in r.stdout, r.output
    assert "token.revoke" in runner.invoke(app, ["audit", "list", "--json"]).stdout
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET outcome = 'denied'"))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "record 1" in r.output


def test_init_validates(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="agency code"):
        init_node(engine, tmp_path, "sg spf", "x", "SG")
    with pytest.raises(NodeError, match="jurisdiction"):
        init_node(engine, tmp_path, "SG-SPF", "x", "Singapore")
    assert not (tmp_path / "keys" / "node.key").exists()


def test_group_commit_keeps_one_chain_and_batches(engine: Engine, tmp_path: Path) -> None:
    """A server's appends share transactions under load, and the chain stays intact."""
    from concurrent.futures import ThreadPoolExecutor

    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    grouped = AuditLog(engine, audit_key(tmp_path), tmp_path / "audit", group_commit=True)
    plain = AuditLog(engine, audit_key(tmp_path), tmp_path / "audit")
    flushes: list[int] = []
    flush = grouped._append_many

    def counting(recs):  # type: ignore[no-untyped-def]
        flushes.append(len(recs))
        return flush(recs)

    grouped._committer._flush = counting  # type: ignore[union-attr]
    with ThreadPoolExecutor(16) as ex:
        got = list(ex.map(lambda i: grouped.append("match", detail={"i": i}), range(200)))
    plain.append("bank.add")  # a second process's style of append, interleaved after
    assert sorted(e.id for e in got) == list(range(1, 201))
    assert {e.detail["i"] for e in got} == set(range(200))
    assert sum(flushes) == 200 and len(flushes) < 200  # some appends shared a commit
    rep = plain.verify()
    assert rep.ok, rep.problems
    assert rep.records == 201 and rep.last_id == 201
