"""Everything a scan writes besides scan.db: the report, results.jsonl/.csv and the VICS
case, all read from scan.db (all of them, every run).

Why several processes with ``jobs`` > 1: the report (mostly blurring thumbnails) and the
exports (mostly serialising every file's row) take about as long as each other and share
nothing but the database, which SQLite lets both read at once. Writing them side by side,
with half the report's thumbnails presented by a third process, shares the part of a scan
that runs after hashing across the cores. The outputs are the same either way
(tests/triage/test_outputs.py).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, cast

from vigil.triage.report import (
    Presented,
    ThumbnailMode,
    presented_thumbnail,
    shown_thumbnails,
    write_report,
)
from vigil.triage.scandb import ScanDB


def write_outputs(out: Path, thumbnails: str,
                  series_notes: dict[str, dict[str, Any]] | None = None,
                  jobs: int = 1) -> list[Path]:
    """Render the report and exports from ``out``/scan.db; with ``jobs`` > 1 the exports
    are written by a second process while this one writes the report, and a third
    presents the second half of the report's blurred thumbnails (this one presents the
    first half meanwhile, and finds the rest ready when it gets there). Returns the files
    written: the report first."""
    mode = cast(ThumbnailMode, thumbnails)
    if jobs <= 1:
        return [write_report_of(out, mode, series_notes), *write_exports(out, series_notes)]
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        exports = pool.submit(write_exports, out, series_notes)
        later: _Later | None = None
        if mode == "blurred":
            db = ScanDB(out / "scan.db")
            try:
                shown = shown_thumbnails(db)
            finally:
                db.close()
            rest = shown[len(shown) // 2:]
            later = _Later(frozenset(rest), pool.submit(present_part, out, rest, mode))
        report = write_report_of(out, mode, series_notes, later)
        return [report, *exports.result()]


class _Later(Mapping[str, bytes | None]):
    """Thumbnails being presented by another process: which ones is known at once, their
    bytes when first asked for (waiting for that process then)."""

    def __init__(self, shas: frozenset[str], future: Future[dict[str, bytes | None]]) -> None:
        self.shas, self.future = shas, future

    def __contains__(self, sha: object) -> bool:
        return sha in self.shas

    def __getitem__(self, sha: str) -> bytes | None:
        if sha not in self.shas:
            raise KeyError(sha)
        return self.future.result()[sha]

    def __iter__(self) -> Iterator[str]:
        return iter(self.shas)

    def __len__(self) -> int:
        return len(self.shas)


def present_part(out: Path, shas: list[str], mode: ThumbnailMode) -> dict[str, bytes | None]:
    """The report's thumbnails of ``shas``, as the report would present them itself."""
    db = ScanDB(out / "scan.db")
    try:
        return {sha: presented_thumbnail(db, sha, mode) for sha in shas}
    finally:
        db.close()


def write_report_of(out: Path, thumbnails: ThumbnailMode,
                    series_notes: dict[str, dict[str, Any]] | None = None,
                    presented: Presented | None = None) -> Path:
    """``out``/report.html."""
    db = ScanDB(out / "scan.db")
    try:
        return write_report(db, out / "report.html", thumbnails, series_notes, presented)
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
