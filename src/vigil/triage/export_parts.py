"""The exports of a large scan written in parts, side by side, then joined.

Why: ``results.jsonl``, ``results.csv`` and the VICS case grow with every file of the
scan (about 0.07 ms per file on one core: 12 minutes at 10M files) while hashing divides
by the workers, so on a many-core machine they became a large part of a big scan's
time after hashing. Each span of ``PART_FILES`` file ids is one task for a worker process, writing
its rows to part files; the parts are joined in order into the same bytes one process
writes (tests/triage/test_outputs.py compares them).

The VICS case numbers its Media in order of first appearance, so a span's numbering
starts after the items of every earlier span: the results task of a span counts them, and
the VICS task of the next span is queued once that count is in.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from typing import Any

from vigil.triage.exports import (
    CSV_COLUMNS,
    VICS_TAIL,
    SeriesNotes,
    matches_by_item,
    vics_head,
    vics_path,
    write_results_rows,
    write_vics_media,
)
from vigil.triage.scandb import ScanDB, Span

#: File ids per part: enough that a part's own queries and process hand-off (milliseconds)
#: are small beside its rows (about 3 s of work), few enough that the parts spread over
#: the workers of a scan of a few hundred thousand files.
PART_FILES = 50_000

#: Where the parts are written inside the scan folder; removed once they are joined.
PARTS = ".export-parts"


def spans_of(bounds: Span, part_files: int = PART_FILES) -> list[Span]:
    """``bounds`` cut into consecutive spans of at most ``part_files`` ids."""
    lo, hi = bounds
    return [(a, min(a + part_files, hi)) for a in range(lo, hi, part_files)]


def export_spans(out: Path, part_files: int = PART_FILES) -> list[Span]:
    """The spans the exports of the scan in ``out`` are cut into."""
    db = ScanDB(out / "scan.db")
    try:
        return spans_of(db.id_bounds(), part_files)
    finally:
        db.close()


def write_exports_in_parts(out: Path, spans: list[Span], pool: Executor,
                           series_notes: SeriesNotes | None = None,
                           progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """``out``/results.jsonl, results.csv and case.vics.json, each span written by a task of
    ``pool`` and the parts joined here. A failed part fails the whole call before any of
    the three files is replaced, so the previous outputs (if any) stay whole.
    ``progress(done, total)`` is told of each part written (a results and a VICS part per
    span)."""
    parts = out / PARTS
    shutil.rmtree(parts, ignore_errors=True)  # left by a run that was killed
    parts.mkdir()
    tasks: list[Future[Any]] = []
    total = 2 * len(spans)
    try:
        results = [pool.submit(_results_part, out, k, span, series_notes)
                   for k, span in enumerate(spans)]
        tasks.extend(results)
        media: list[Future[int]] = []
        start = 1
        for k, span in enumerate(spans):
            media.append(pool.submit(_vics_part, out, k, span, start, series_notes))
            tasks.append(media[-1])
            start += results[k].result()
            if progress:
                progress(sum(f.done() for f in (*results, *media)), total)
        head = pool.submit(_vics_head, out)  # every item's leads: held by a worker, briefly
        tasks.append(head)
        for m in media:
            m.result()
            if progress:
                progress(sum(f.done() for f in (*results, *media)), total)
        return _join(out, len(spans), head.result())
    finally:
        # After a failure, parts still queued are dropped and those running finish before
        # the folder goes, so none is written into it afterwards.
        for t in tasks:
            t.cancel()
        wait(tasks)
        shutil.rmtree(parts, ignore_errors=True)


def _part(out: Path, name: str, k: int) -> Path:
    return out / PARTS / f"{k:06d}.{name}"


def _results_part(out: Path, k: int, span: Span, series_notes: SeriesNotes | None) -> int:
    db = ScanDB(out / "scan.db")
    try:
        with open(_part(out, "jsonl", k), "w", encoding="utf-8", newline="\n") as fj, \
                open(_part(out, "csv", k), "w", encoding="utf-8", newline="") as fc:
            return write_results_rows(db, fj, fc, series_notes, span)
    finally:
        db.close()


def _vics_part(out: Path, k: int, span: Span, start: int,
               series_notes: SeriesNotes | None) -> int:
    db = ScanDB(out / "scan.db")
    try:
        with open(_part(out, "vics", k), "w", encoding="utf-8", newline="\n") as fh:
            return write_vics_media(db, fh, start, matches_by_item(db, span), series_notes,
                                    span=span)
    finally:
        db.close()


def _vics_head(out: Path) -> str:
    db = ScanDB(out / "scan.db")
    try:
        return vics_head(db, matches_by_item(db))
    finally:
        db.close()


def _join(out: Path, n: int, head: str) -> list[Path]:
    """Each output written whole under a temporary name (its head, the parts in order, its
    tail), then the three renamed into place."""
    header = io.StringIO(newline="")
    csv.writer(header).writerow(CSV_COLUMNS)
    outputs = [(out / "results.jsonl", "jsonl", "", ""),
            (out / "results.csv", "csv", header.getvalue(), ""),
            (vics_path(out), "vics", head, VICS_TAIL)]
    for final, name, first, last in outputs:
        with open(final.with_name(final.name + ".tmp"), "wb") as dst:
            dst.write(first.encode("utf-8"))
            for k in range(n):
                with open(_part(out, name, k), "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
            dst.write(last.encode("utf-8"))
    for final, _, _, _ in outputs:
        final.with_name(final.name + ".tmp").replace(final)
    return [final for final, _, _, _ in outputs]


__all__ = ["PART_FILES", "export_spans", "spans_of", "write_exports_in_parts"]
