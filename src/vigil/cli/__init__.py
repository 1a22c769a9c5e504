"""The ``vigil`` command line. Thin: parses options, calls the layers below, prints.

Run ``vigil --help`` or ``vigil COMMAND --help``; every command explains itself.
"""

from vigil.cli import bank, hash, index, match, node, peer, scan  # noqa: F401  (registers)
from vigil.cli._app import app

__all__ = ["app"]
