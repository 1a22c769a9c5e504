"""A scan folder written by an older Vigil is migrated in place when resumed; one written
by a newer Vigil is refused with a message that says what to do, and nothing in it is
changed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.demo.synthetic import synthetic_image
from vigil.triage.scan import ScanOptions, run_scan
from vigil.triage.scandb import SCHEMA_VERSION, ScanDB

ADDED = {"files": ("pdq_dihedral", "vpdq", "flags"), "matches": ("detail",)}


def _evidence(tmp_path: Path) -> Path:
    ev = tmp_path / "ev"
    ev.mkdir()
    for i in range(4):
        synthetic_image(i, (320, 240)).save(ev / f"p{i}.jpg")
    return ev


def _columns(db: Path, table: str) -> set[str]:
    with sqlite3.connect(db) as c:
        return {r[1] for r in c.execute(f"PRAGMA table_info({table})")}


def _dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        return list(c.iterdump())


def test_an_older_scan_is_migrated_and_resumed(tmp_path: Path) -> None:
    ev = _evidence(tmp_path)
    out = tmp_path / "old"
    out.mkdir()
    ScanDB(out / "scan.db").close()
    with sqlite3.connect(out / "scan.db") as c:  # the first schema: none of the additions
        for table, cols in ADDED.items():
            for col in cols:
                c.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
        c.execute("DROP TABLE keyframes")  # a table added later, like the columns
        c.execute("DELETE FROM meta WHERE key = 'schema_version'")
    assert not _columns(out / "scan.db", "files") & set(ADDED["files"])
    assert not _columns(out / "scan.db", "keyframes")
    stats = run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1), None)
    assert stats.hashed == 4
    assert {"sha256", "n", "seconds", "jpeg"} == _columns(out / "scan.db", "keyframes")
    assert set(ADDED["files"]) <= _columns(out / "scan.db", "files")
    assert set(ADDED["matches"]) <= _columns(out / "scan.db", "matches")
    db = ScanDB(out / "scan.db")
    try:
        assert db.get_meta("schema_version") == SCHEMA_VERSION
        assert db.summary().files == 4
    finally:
        db.close()


def test_a_newer_scan_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    ev = _evidence(tmp_path)
    out = tmp_path / "new"
    run_scan(out, ScanOptions(inputs=(str(ev),), jobs=1), None)
    with sqlite3.connect(out / "scan.db") as c:
        c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                  (json.dumps(SCHEMA_VERSION + 1),))
    before = _dump(out / "scan.db")
    with pytest.raises(ValueError, match="new folder"):
        ScanDB(out / "scan.db")
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home")}
    env.pop("VIGIL_DATABASE_URL", None)
    r = subprocess.run([sys.executable, "-m", "vigil", "scan", str(ev), "--out", str(out),
                        "-q", "--no-match"], env=env, text=True, capture_output=True,
                       timeout=120)
    said = " ".join(r.stderr.split())
    assert r.returncode == 1
    assert f"scan database version {SCHEMA_VERSION + 1}, written by another Vigil" in said
    assert "new folder" in said and "Traceback" not in said
    assert _dump(out / "scan.db") == before
