"""``python -m vigil`` is the same as the ``vigil`` command."""

from vigil.cli import app

app(prog_name="vigil")
