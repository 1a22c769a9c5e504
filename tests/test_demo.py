"""`make demo` must keep working: it is the first thing a newcomer runs."""

from __future__ import annotations

from pathlib import Path

from vigil import demo


def test_demo_finds_every_known_copy_and_nothing_else(tmp_path: Path) -> None:
    assert demo.main(["--out", str(tmp_path / "demo"), "--known", "8"]) == 0
    assert len(list((tmp_path / "demo" / "seizure").iterdir())) == len(demo.EDITS) + 3
