"""The ``vigil`` command line. Thin: parses options, calls the layers below, prints.

Run ``vigil --help`` or ``vigil COMMAND --help``; every command explains itself.
"""

from vigil.cli import bank, hash, index, match, scan  # noqa: F401  (registers the commands)
from vigil.cli import node  # noqa: F401  (init, serve, token, user, audit)
from vigil.cli._app import app

__all__ = ["app"]
