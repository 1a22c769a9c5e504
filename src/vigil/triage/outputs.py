"""Everything a scan writes besides scan.db: the report, results.jsonl/.csv and the VICS
case, all read from scan.db (all of them, every run).

Why two processes with ``jobs`` > 1: the report (mostly blurring thumbnails) and the
exports (mostly serialising every file's row) take about as long as each other and share
nothing but the database, which SQLite lets both read at once. Writing them side by side
halves the part of a scan that runs after hashing on one core. The outputs are the same
either way (tests/triage/test_outputs.py).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal, cast

from vigil.triage.scandb import ScanDB

ThumbnailMode = Literal["blurred", "clear", "none"]


def write_outputs(out: Path, thumbnails: str,
                  series_notes: dict[str, dict[str, Any]] | None = None,
                  jobs: int = 1) -> list[Path]:
    """Render the report and exports from ``out``/scan.db; with ``jobs`` > 1 the exports
    are written by a second process while this one writes the report. Returns the files
    written: the report first."""
    mode = cast(ThumbnailMode, thumbnails)
    if jobs <= 1:
        return [write_report_of(out, mode, series_notes), *write_exports(out, series_notes)]
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        exports = pool.submit(write_exports, out, series_notes)
        report = write_report_of(out, mode, series_notes)
        return [report, *exports.result()]


def write_report_of(out: Path, thumbnails: ThumbnailMode,
                    series_notes: dict[str, dict[str, Any]] | None = None) -> Path:
    """``out``/report.html."""
    from vigil.triage.report import write_report

    db = ScanDB(out / "scan.db")
    try:
        return write_report(db, out / "report.html", thumbnails, series_notes)
    finally:
        db.close()


def write_exports(out: Path, series_notes: dict[str, dict[str, Any]] | None = None
                  ) -> list[Path]:
    """``out``/results.jsonl, results.csv and case.vics.json."""
    from vigil.triage.exports import write_results, write_vics_case

    db = ScanDB(out / "scan.db")
    try:
        written = list(write_results(db, out, series_notes))
        written.append(write_vics_case(db, out / "case.vics.json", series_notes=series_notes))
        return written
    finally:
        db.close()


__all__ = ["write_exports", "write_outputs", "write_report_of"]
