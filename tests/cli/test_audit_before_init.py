"""Changes made before `vigil init` are audited too: the first one creates the audit key,
`vigil init` adopts it, and the chain runs unbroken; a command that cannot append to the
store's log (its key is in another VIGIL_HOME) refuses before changing anything."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from vigil.audit import AuditLog
from vigil.banks import Banks
from vigil.cli import app

HK = "HK-POL"


def _cli(engine: Engine, home: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"VIGIL_HOME": str(home), "VIGIL_USER": "examiner1",
           "VIGIL_DATABASE_URL": engine.url.render_as_string(hide_password=False)}

    def run(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == code, (args, r.output, r.exception)
        return r

    return run


def test_changes_before_init_start_the_log_and_init_continues_it(engine: Engine,
                                                                 tmp_path: Path) -> None:
    home = tmp_path / "home"
    vigil = _cli(engine, home)
    vigil("bank", "create", "seized", "--agency", HK)
    key = home / "keys" / "audit.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home / "keys").st_mode) == 0o700
    first = key.read_bytes()
    [rec] = AuditLog(engine, first).records()
    assert (rec.action, rec.actor, rec.agency, rec.target) == \
        ("bank.create", "local/examiner1", None, "seized")  # no node, so no agency yet
    assert "intact: 1 records" in vigil("audit", "verify").stdout

    vigil("init", "--agency", HK, "--name", "Hong Kong Police", "--jurisdiction", "HK")
    assert key.read_bytes() == first  # adopted, not replaced
    assert (home / "keys" / "node.key").exists()
    vigil("bank", "create", "known", "--agency", HK)
    recs = AuditLog(engine, first).records()
    assert [r.action for r in recs] == ["bank.create", "node.init", "user.create",
                                        "token.create", "bank.create"]
    assert [r.agency for r in recs] == [None, HK, HK, HK, HK]
    assert "intact: 5 records" in vigil("audit", "verify").stdout


def test_a_store_whose_key_is_elsewhere_is_refused_before_any_change(engine: Engine,
                                                                     tmp_path: Path) -> None:
    vigil = _cli(engine, tmp_path / "home")
    vigil("bank", "create", "seized", "--agency", HK)
    stray = _cli(engine, tmp_path / "elsewhere")
    r = stray("bank", "create", "other", "--agency", HK, code=1)
    assert "started under another VIGIL_HOME" in r.output and "nothing was changed" in r.output
    assert "other" not in Banks(engine).names()
    assert not (tmp_path / "elsewhere" / "keys" / "audit.key").exists()

    vigil("init", "--agency", HK, "--name", "Hong Kong Police", "--jurisdiction", "HK")
    r = stray("user", "create", "ana", "--role", "analyst", code=1)
    assert f"belongs to node {HK}" in r.output and "nothing was changed" in r.output
    r = stray("init", "--agency", "KR-KNPA", "--name", "K", "--jurisdiction", "KR", code=1)
    assert f"belongs to node {HK}" in r.output
    r = stray("audit", "verify", code=1)
    assert "no audit key" in r.output
    assert "intact: 4 records" in vigil("audit", "verify").stdout  # bank, then init's 3


def test_verify_with_no_log_yet_says_so(engine: Engine, tmp_path: Path) -> None:
    r = _cli(engine, tmp_path / "home")("audit", "verify", code=1)
    # the error is wrapped to the terminal's width
    assert "nothing has been changed on this store" in " ".join(r.output.split())
