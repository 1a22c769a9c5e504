"""Command help that wraps to the terminal, whatever its width.

Why: in Rich markup mode Typer keeps every line break of a docstring after its first
paragraph, so a help text written at 88 columns, shown in an 80-column terminal, breaks
every line twice (a long line, then a word or two alone). ``reflow`` joins the lines of
each prose paragraph so Rich wraps them once, at the terminal's width. What is laid out
by hand stays as written: indented lines (examples), list items (``- ``, ``* ``, ``1. ``)
each on their own line, and a paragraph that begins with ``\\b`` (click's "keep as is").
"""

from __future__ import annotations

import inspect
import re

import typer

_ITEM = re.compile(r"(?:[-*•]|\d+[.)])\s")


def reflow(doc: str) -> str:
    """``doc`` (a docstring) with the single line breaks inside prose paragraphs removed."""
    out: list[str] = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        if para.startswith("\b"):
            out.append(para)
            continue
        lines: list[str] = []
        for line in para.split("\n"):
            joinable = (lines and not line.startswith(" ") and not _ITEM.match(line)
                        and not lines[-1].startswith(" "))
            if joinable:
                lines[-1] = f"{lines[-1]} {line.strip()}"
            else:
                lines.append(line.rstrip())
        out.append("\n".join(lines))
    return "\n\n".join(out)


def reflow_commands(app: typer.Typer) -> None:
    """Give every command and group of ``app`` (recursively) its docstring reflowed, as
    its help, unless a help text was given explicitly."""
    for command in app.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = reflow(command.callback.__doc__)
        elif command.help:
            command.help = reflow(command.help)
    if isinstance(app.info.help, str):
        app.info.help = reflow(app.info.help)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            reflow_commands(group.typer_instance)


__all__ = ["reflow", "reflow_commands"]
