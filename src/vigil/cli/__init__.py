"""The ``vigil`` command line. Thin: parses options, calls the layers below, prints.

Run ``vigil --help`` or ``vigil COMMAND --help``; every command explains itself.

Each command group lives in its own module, and the ``vigil`` program imports only the
one it runs: ``vigil peer sync`` needs neither the hashing stack (Numba, Pillow, PyAV)
nor the match policy, and importing them all cost ~1 s before a sync of 1,000 changes
that itself takes well under a second. Anything else that imports this package (help
without a command, tests, ``vigil.demo``) gets every command.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from vigil.cli._app import app
from vigil.cli._helptext import reflow_commands

#: the modules that define each top-level command (``bank`` gains sharing commands in peer)
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "bank": ("bank", "peer"), "hash": ("hash",), "index": ("index",), "match": ("match",),
    "scan": ("scan",), "peer": ("peer",), "init": ("node",), "serve": ("node",),
    "token": ("node",), "user": ("node",), "audit": ("node",), "review": ("review",),
    "url": ("takedown",), "notice": ("takedown",), "selfcases": ("selfcases",),
    "series": ("series",), "op": ("operations",)}
ALL_MODULES = ("bank", "hash", "index", "match", "node", "peer", "review", "scan", "takedown",
               "selfcases", "series", "operations")


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a command line needs: only the chosen command's when this is
    the ``vigil`` program (or ``python -m vigil``) naming a known command; else all."""
    prog = Path(argv[0]).name if argv else ""
    if prog not in ("vigil", "__main__.py"):
        return ALL_MODULES
    command = next((a for a in argv[1:] if not a.startswith("-")), None)
    return COMMAND_MODULES.get(command or "", ALL_MODULES)


for _m in modules_for(sys.argv):
    importlib.import_module(f"vigil.cli.{_m}")
reflow_commands(app)

__all__ = ["ALL_MODULES", "COMMAND_MODULES", "app", "modules_for"]
