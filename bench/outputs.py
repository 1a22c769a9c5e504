"""A scan's outputs (report, results.jsonl/.csv, VICS case) written three ways, side by side.

* ``one``: one process writes everything (``-j 1``, the reference);
* ``two``: the report here and the exports in one other process (what ``-j 2`` did
  before the exports were cut into parts, and still does under ``PART_FILES`` files);
* ``parts``: the report and spans of ``PART_FILES`` files as tasks for ``--jobs``
  processes, joined in order.

Runs alternate (one two parts, parts two one, ...) so a drift of the machine hits all
three alike; every run's files are compared with the first ``one`` run's (the VICS date and
case id aside). It copies the scan database it is given, so a finished scan stays as it was.

Run: .venv/bin/python -m bench.outputs SCAN_FOLDER [--jobs 2] [--runs 3]
(bench/out/seizure-500000-scan after ``bench.scan_memory``)
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script

import argparse
import re
import shutil
import sqlite3
import statistics
import time
from pathlib import Path

from vigil.triage.export_parts import PART_FILES
from vigil.triage.outputs import write_outputs

_VOLATILE = re.compile(rb'"(DateCreated|CaseID|CaseNumber)":"[^"]*"|'
                       rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ")


def _digest(folder: Path) -> dict[str, int]:
    """Each output's hash with the moment of writing and the fresh case id masked."""
    return {p.name: hash(_VOLATILE.sub(b"", p.read_bytes()))
            for p in sorted(folder.iterdir()) if p.suffix in (".html", ".jsonl", ".csv", ".json")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scan", type=Path, help="a finished scan's folder (holds scan.db)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(__file__).parent / "out" / "outputs-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(args.scan / "scan.db", work / "scan.db")
    files = sqlite3.connect(work / "scan.db").execute("SELECT count(*) FROM files").fetchone()[0]
    ways = {"one": (1, PART_FILES), "two": (args.jobs, 1 << 62), "parts": (args.jobs, PART_FILES)}
    order = list(ways)
    times: dict[str, list[float]] = {w: [] for w in ways}
    want: dict[str, int] | None = None
    print(f"{files:,} files, --jobs {args.jobs}, {args.runs} runs; load average at start "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    for r in range(args.runs):
        for way in order if r % 2 == 0 else order[::-1]:
            jobs, part_files = ways[way]
            t = time.perf_counter()
            write_outputs(work, "blurred", None, jobs=jobs, part_files=part_files)
            times[way].append(time.perf_counter() - t)
            got = _digest(work)
            want = want or got
            if got != want:
                raise SystemExit(f"{way}: outputs differ from the first run's")
            print(f"  run {r + 1} {way}: {times[way][-1]:.1f} s", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}; outputs identical in every run\n")
    print("| way | processes | min s | median s | max s | vs one (median) |")
    print("|---|---|---:|---:|---:|---:|")
    base = statistics.median(times["one"])
    for way, (jobs, _) in ways.items():
        ts = times[way]
        procs = "1" if jobs == 1 else ("2 (report + exports)" if way == "two" else
                                       f"{jobs} (report and {PART_FILES:,}-file spans)")
        print(f"| {way} | {procs} | {min(ts):.1f} | {statistics.median(ts):.1f} | "
              f"{max(ts):.1f} | {base / statistics.median(ts):.2f}× |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
