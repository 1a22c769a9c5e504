"""Every name and message a command prints goes through here: escaped, never raw.

What commands print comes from places an attacker can write to: seized file names and
paths inside archives, bank names and labels (perhaps stored by an older version, or
pulled from a peer), users, peers, error messages that quote input. Printed raw, a file
name holding ``\\npdq=000…`` forges a result line, ESC sequences recolour or rewrite the
terminal, and a right-to-left override makes ``gpj.exe`` read as ``exe.jpg``.

* :func:`shown` for plain text (``typer.echo``): whatever is not plainly visible becomes
  an escape (``\\u001b``, ``\\u202e``; ``vigil.banks.text.visible``).
* :func:`markup` for text inside Rich markup (``Console.print``, table cells): the same,
  and Rich's own markup (``[red]``) escaped, so a name cannot style or break the output.

Machine-readable outputs (``--json``, ``--csv``, exports) are exact instead: their
syntax escapes what needs escaping, and a script must get the value as it is.
"""

from __future__ import annotations

from rich.markup import escape

from vigil.banks.text import visible


def shown(value: object) -> str:
    """``value`` for plain text output: every invisible or control character escaped."""
    return visible(value)


def markup(value: object) -> str:
    """``value`` for a place Rich reads as markup: escaped as :func:`shown`, and ``[``
    escaped so that it is printed, never interpreted."""
    return escape(visible(value))
