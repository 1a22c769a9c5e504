"""The ``vigil`` program imports only the command it runs (a one-off ``vigil peer sync``
must not pay for the hashing stack), and help without a command still lists them all."""

from __future__ import annotations

import subprocess
import sys

from vigil.cli import ALL_MODULES, modules_for


def test_modules_for_a_command_line() -> None:
    assert modules_for(["/venv/bin/vigil", "peer", "sync", "sg"]) == ("peer",)
    assert modules_for(["/src/vigil/__main__.py", "bank", "list"]) == ("bank", "peer")
    assert modules_for(["/venv/bin/vigil", "serve"]) == ("node",)
    # help, unknown commands and anything that is not the vigil program: everything
    assert modules_for(["/venv/bin/vigil", "--help"]) == ALL_MODULES
    assert modules_for(["/venv/bin/vigil", "nope"]) == ALL_MODULES
    assert modules_for(["/venv/bin/pytest", "peer"]) == ALL_MODULES


def test_peer_commands_do_not_import_the_hashing_stack() -> None:
    code = ("import sys; sys.argv = ['vigil', 'peer', 'sync']; import vigil.cli; "
            "print(sorted(m for m in ('numba', 'PIL', 'av', 'vigil.signals', 'vigil.matching',"
            " 'alembic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "vigil", "--help"], capture_output=True,
                         text=True, check=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    for name in ("bank", "hash", "index", "match", "scan", "peer", "init", "serve", "token",
                 "user", "audit"):
        assert f" {name} " in out, name
    bank = subprocess.run([sys.executable, "-m", "vigil", "bank", "--help"],
                          capture_output=True, text=True, check=True,
                          env={"COLUMNS": "200", "PATH": ""}).stdout
    for name in ("create", "import", "export", "share", "unshare", "opinion"):
        assert f" {name} " in bank, name
