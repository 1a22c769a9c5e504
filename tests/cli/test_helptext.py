"""Help text wraps once, at the terminal's width, and keeps what is laid out by hand."""

from __future__ import annotations

import os
import subprocess
import sys

from vigil.cli._helptext import reflow


def test_prose_lines_join_and_layout_stays() -> None:
    doc = """First line.

    A paragraph written
    over three
    lines.

    - an item
      that continues
    - another item
    1. numbered

    \b
    keep
    these

    Example

      vigil scan /ev --out case
      vigil review case
    """
    assert reflow(doc).split("\n\n") == [
        "First line.",
        "A paragraph written over three lines.",
        "- an item\n  that continues\n- another item\n1. numbered",
        "\b\nkeep\nthese",
        "Example",
        "  vigil scan /ev --out case\n  vigil review case",
    ]


def _help(*command: str, columns: int) -> list[str]:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1"}
    r = subprocess.run([sys.executable, "-m", "vigil", *command, "--help"], env=env,
                       capture_output=True, text=True, check=True)
    return [line.strip() for line in r.stdout.splitlines()]


def test_help_at_80_columns_has_no_broken_lines() -> None:
    lines = _help("bank", "export", columns=80)
    start = next(k for k, line in enumerate(lines) if line.startswith("The file appears"))
    paragraph = lines[start:lines.index("", start)]
    assert len(paragraph) >= 3
    # every line but the last is filled: no word or two left alone by a kept line break
    assert all(len(line) > 60 for line in paragraph[:-1]), paragraph


def test_scan_help_names_the_ray_extra() -> None:
    assert "(pip install 'vigil[ray]');" in " ".join(_help("scan", columns=200))
