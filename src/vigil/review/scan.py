"""Opening a scan folder for review: refused, with a message that says why, unless it holds
a finished scan.

Why so strict: reviewing a scan that is still running (or was killed half way) would show
a queue without its groups (grouping runs last) and items the banks would have matched,
so an examiner would look at known material for nothing. A scan being resumed keeps the
finish time of its earlier run while it matches and groups again, so the scan's phase
(``meta.phase``, ``finished`` at the end of a run) is checked as well.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from vigil.banks.text import visible
from vigil.triage.scandb import ScanDB


class ScanFolderError(Exception):
    """The folder cannot be reviewed (not a scan, a scan still running, unreadable)."""


def check_scan_folder(folder: Path) -> Path:
    """The path of the folder's ``scan.db`` if it holds a finished scan; otherwise
    ``ScanFolderError`` naming the folder and what to do."""
    shown = visible(str(folder))
    if not folder.exists():
        raise ScanFolderError(f"{shown} does not exist")
    if not folder.is_dir():
        raise ScanFolderError(f"{shown} is not a folder: give the --out folder of a "
                              "`vigil scan`")
    db_path = folder / "scan.db"
    if not db_path.is_file():
        raise ScanFolderError(f"{shown} is not a scan folder (no scan.db in it): run "
                              f"`vigil scan EVIDENCE --out {shown}` first")
    try:
        with open(db_path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise ScanFolderError(f"{visible(str(db_path))} is not a scan database "
                                      "(not an SQLite file)")
        db = ScanDB(db_path)
    except (sqlite3.Error, ValueError) as exc:
        raise ScanFolderError(f"{visible(str(db_path))} cannot be read as a scan: "
                              f"{visible(str(exc))}") from None
    try:
        pending = db.conn.execute(
            "SELECT count(*) FROM files WHERE status = 'pending'").fetchone()[0]
        finished = db.get_meta("finished_at")
        started = db.get_meta("started_at")
        phase = db.get_meta("phase")  # absent in scans written before it was recorded
    finally:
        db.close()
    unsettled = phase is not None and phase != "finished"
    if pending or unsettled or finished is None or (started is not None
                                                    and finished < started):
        if pending:
            what = f"{pending:,} file{'s' if pending != 1 else ''} not processed yet"
        elif phase == "matching":
            what = "its files are hashed, but not yet matched and grouped"
        elif phase == "grouping":
            what = "its files are hashed and matched, but not yet grouped"
        elif unsettled:
            what = f"it is in its {visible(str(phase))} phase"
        else:
            what = "it has no finish time"
        raise ScanFolderError(
            f"the scan in {shown} has not finished ({what}): it is still running or was "
            "interrupted. Wait for it, or rerun the same `vigil scan` command to complete "
            "it, then review")
    return db_path
