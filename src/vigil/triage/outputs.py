"""Everything a scan writes besides scan.db: the report, results.jsonl/.csv and the VICS
case, all read from scan.db (all of them, every run).

Why two processes with ``jobs`` > 1: the report (mostly blurring thumbnails) and the
exports (mostly serialising every file's row) take about as long as each other at 10k
files and share nothing but the database, which SQLite lets both read at once. Writing
them side by side halves the part of a scan that runs after hashing on one core. The
report is bounded (it shows the first groups and matches) but the exports grow with the
files, so past ``PART_FILES`` files they are cut into spans written by every worker. The
outputs are the same either way (tests/triage/test_outputs.py).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from vigil.triage.export_parts import PART_FILES, export_spans, write_exports_in_parts
from vigil.triage.scandb import ScanDB

if TYPE_CHECKING:  # the grouping code (numpy, the index) is not imported to write outputs
    from vigil.triage.grouping import Progress

ThumbnailMode = Literal["blurred", "clear", "none"]


#: The progress display's name for this phase.
PHASE = "report and exports"


def write_outputs(out: Path, thumbnails: str,
                  series_notes: dict[str, dict[str, Any]] | None = None,
                  jobs: int = 1, part_files: int = PART_FILES,
                  progress: Progress | None = None) -> list[Path]:
    """Render the report and exports from ``out``/scan.db. With ``jobs`` > 1 the exports
    are written by a second process while this one writes the report, or, past
    ``part_files`` files, the report and spans of the exports are tasks for ``jobs``
    processes (``vigil.triage.export_parts``). Returns the files written: the report
    first. ``progress(PHASE, done, total)`` hears of the start, each part written, and
    the end."""
    if progress:
        progress(PHASE, 0, 1)
    written = _write(out, cast(ThumbnailMode, thumbnails), series_notes, jobs, part_files,
                     progress)
    if progress:
        progress(PHASE, 1, 1)
    return written


def _write(out: Path, mode: ThumbnailMode, series_notes: dict[str, dict[str, Any]] | None,
           jobs: int, part_files: int, progress: Progress | None,
           ) -> list[Path]:
    if jobs <= 1:
        return [write_report_of(out, mode, series_notes), *write_exports(out, series_notes)]
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    spans = export_spans(out, part_files)
    with ProcessPoolExecutor(max_workers=1 if len(spans) <= 1 else jobs,
                             mp_context=ctx) as pool:
        if len(spans) <= 1:
            exports = pool.submit(write_exports, out, series_notes)
            report = write_report_of(out, mode, series_notes)
            return [report, *exports.result()]
        # The report is one task among the parts, queued first: it is bounded, so the
        # parts behind it keep every worker busy until the last one is done.
        later = pool.submit(write_report_of, out, mode, series_notes)
        parts = write_exports_in_parts(
            out, spans, pool, series_notes,
            (lambda done, total: progress(PHASE, done, total + 1)) if progress else None)
        return [later.result(), *parts]


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
