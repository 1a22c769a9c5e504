"""Hashing many files for a command: in worker processes, in input order, with progress."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.progress import Progress

from vigil.signals import FileSignals, HashOptions, hash_file, iter_files
from vigil.signals.files import display_path


def _hash_one(args: tuple[str, HashOptions]) -> FileSignals:
    return hash_file(args[0], args[1])


def default_jobs() -> int:
    """All cores but one are worth it for hashing; one core stays for the parent."""
    return max(1, (os.cpu_count() or 2) - 1)


def hash_paths(paths: list[Path], options: HashOptions, jobs: int = 1,
               bar: Progress | None = None) -> Iterator[FileSignals]:
    """Every file under ``paths`` hashed, in input order; listing errors pass through."""
    items = list(iter_files(paths))
    todo = [(str(p), options) for p, err in items if err is None]
    task = bar.add_task("hashing", total=len(items)) if bar is not None else None
    pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 and len(todo) > 1 else None
    hashed = pool.map(_hash_one, todo, chunksize=8) if pool else map(_hash_one, todo)
    try:
        for path, err in items:
            if err is not None:
                yield FileSignals(path=display_path(path), error=err)
            else:
                yield next(hashed)
            if bar is not None and task is not None:
                bar.advance(task)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
