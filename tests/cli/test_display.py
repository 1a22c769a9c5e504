"""Hostile names in the CLI, as a user runs it (real processes, SQLite and PostgreSQL):
nothing a file, bank, label or user name holds can forge a line, drive the terminal or
break Rich's markup; names outside the documented character set are refused at the door;
an export that fails leaves no complete-looking file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import encode
from vigil.banks import Banks
from vigil.banks.entry import stored_labels, stored_record
from vigil.demo.synthetic import synthetic_image
from vigil.store.models import Bank, utcnow

MD5 = "0123456789abcdef0123456789abcdef"
#: what must never reach a terminal raw: ESC (terminal control), CR and LF (forged lines),
#: a right-to-left override, and Rich's markup
RAW = ("\x1b", "\r", "\u202e")


@pytest.fixture
def vigil(engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``vigil ARGS`` in a subprocess on this test's store; returns the finished process."""
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home"),
           "VIGIL_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "VIGIL_USER": "examiner1", "COLUMNS": "250"}

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "vigil", *args], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    run.engine = engine  # type: ignore[attr-defined]
    return run


def _legacy_bank(engine: Engine, name: str, description: str = "") -> None:
    """A bank as an older version let it be named (the door now refuses the name)."""
    with Session(engine) as s, s.begin():
        s.add(Bank(name=name, agency="SG-SPF", description=description, created_at=utcnow(),
                   updated_at=utcnow(), last_seq=0))


def test_a_file_name_cannot_forge_a_result_line(tmp_path: Path) -> None:
    folder = tmp_path / "seized"
    folder.mkdir()
    forged = "x.jpg\npdq=" + "0" * 64 + " q=100  md5=" + "0" * 32
    (folder / forged).write_bytes(encode(synthetic_image(1)))
    (folder / "gpj\u202eexe.jpg").write_bytes(encode(synthetic_image(2)))
    (folder / "esc\x1b[2J.jpg").write_bytes(encode(synthetic_image(3)))
    r = subprocess.run([sys.executable, "-m", "vigil", "hash", str(folder)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("pdq=") for line in lines)
    assert not any(c in r.stdout for c in RAW)
    # paths are shown as the evidence walker names them (its reversible escapes)
    assert "x.jpg\\x0apdq=" in r.stdout and "gpj\\u202eexe.jpg" in r.stdout
    assert "esc\\x1b[2J.jpg" in r.stdout


def test_bank_names_outside_the_character_set_are_refused(vigil) -> None:  # type: ignore[no-untyped-def]
    for name, says in (("evil\x1b[31m", "U+001B ESC"), ("two\rlines", "U+000D CR"),
                       ("a\u202eb", "RIGHT-TO-LEFT OVERRIDE"), ("[red]x", "'['")):
        r = vigil("bank", "create", name, "--agency", "SG-SPF", code=1)
        assert "invalid bank name" in r.stderr and says in r.stderr, r.stderr
        assert not any(c in r.stderr for c in RAW)
    r = vigil("bank", "create", "한국 경찰-2024", "--agency", "SG-SPF",
              "--description", "系列\nsecond line")
    assert "created bank '한국 경찰-2024'" in r.stdout
    vigil("bank", "create", "x", "--agency", "sg spf", code=1)


def test_stored_names_are_escaped_in_every_listing(vigil) -> None:  # type: ignore[no-untyped-def]
    evil = "evil\x1b[31m\rforged\u202e[bold]x[/bold][/]"
    _legacy_bank(vigil.engine, evil, description="desc\x1b[2J")
    Banks(vigil.engine, user="older version").apply(evil, [stored_record(
        "md5", MD5, stored_labels(("us", "1"), "S\x1b[1m", "unknown", ("t\x1b",), None),
        None, "add", None, {})])
    for args in (("bank", "list"), ("bank", "show", evil), ("bank", "export", evil, "-"),
                 ("match", "--hash", f"md5:{MD5}")):
        r = vigil(*args)
        # (an export to stdout is data, exact; what it says about it on stderr is escaped)
        shown = r.stdout + r.stderr if args[1] != "export" else r.stderr
        assert not any(c in shown for c in RAW), (args, shown)
        assert "evil\\u001b[31m\\u000dforged\\u202e" in shown.replace("\n", ""), (args, shown)
    r = vigil("bank", "list")
    assert "[bold]x[/bold][/]" in r.stdout  # markup printed, not applied (nor a crash)
    r = vigil("bank", "show", "[/nope]", code=1)  # an error quoting input: no MarkupError
    assert "no bank named '[/nope]'" in r.stderr


def test_a_failed_export_leaves_no_complete_looking_file(vigil, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vigil("bank", "create", "b", "--agency", "SG-SPF")
    good = [stored_record("md5", f"{i:032x}", stored_labels(None, None, "unknown", (), None),
                          None, "add", None, {}) for i in range(3000)]
    bad = stored_record("md5", "f" * 32, stored_labels(None, None, "unknown", ("a;b",), None),
                        None, "add", None, {})
    Banks(vigil.engine, user="older version").apply("b", [*good, bad])
    out = tmp_path / "export.csv"
    r = vigil("bank", "export", "b", str(out), code=1)
    assert "record 3001" in r.stderr and "left as it was" in r.stderr, r.stderr
    assert not out.exists() and os.listdir(tmp_path).count("export.csv") == 0
    assert not [p for p in os.listdir(tmp_path) if ".part-" in p]
    out.write_text("the previous export\n")
    vigil("bank", "export", "b", str(out), code=1)
    assert out.read_text() == "the previous export\n"
    r = vigil("bank", "export", "b", "-", code=1)  # stdout cannot be taken back: exit 1
    assert "standard output (incomplete)" in r.stderr
    r = vigil("bank", "export", "b", str(out), "--format", "stopncii")  # it carries ';'
    assert "exported 3,001 entries" in r.stderr and out.read_text().rstrip().endswith("]")


def test_user_and_peer_names_are_checked_at_the_door(vigil) -> None:  # type: ignore[no-untyped-def]
    vigil("init", "--agency", "SG-SPF", "--name", "Singapore Police Force",
          "--jurisdiction", "SG")
    r = vigil("user", "create", "eve\u202e", "--role", "analyst", code=1)
    assert "invalid user name" in r.stderr and "U+202E" in r.stderr
    vigil("user", "create", "bob\n", "--role", "analyst")  # surrounding white space is trimmed
    r = vigil("user", "create", "김민준", "--role", "analyst")
    assert "SG-SPF/김민준" in r.stdout
    r = vigil("user", "list")
    assert "김민준" in r.stdout and "bob" in r.stdout
    r = vigil("peer", "add", "../../etc", "http://127.0.0.1:1", "--key", "00" * 32,
              "--token", "t", code=1)
    assert "invalid peer name" in r.stderr
    r = vigil("init", "--agency", "HK", "--name", "x\x1b", "--jurisdiction", "HK", code=1)
    assert "already initialised" in r.stderr or "U+001B" in r.stderr
