"""Hashing the files a command names: folders, files and archives, in worker processes,
in listing order, with progress.

``vigil hash``, ``vigil match`` and ``vigil bank add`` list their inputs with the same
evidence walker as ``vigil scan`` (``vigil.signals.evidence``) and hash with the same
runner (``vigil.signals.runner``): archive members are hashed in memory as
``archive.zip!/member.jpg``, special files become ``special-file`` errors and never block,
and a worker that dies is replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.progress import Progress

from vigil.signals import FileSignals, HashOptions
from vigil.signals.evidence import iter_items
from vigil.signals.forkstart import start_early
from vigil.signals.runner import Unit, in_order, run


def default_jobs() -> int:
    """All cores but one are worth it for hashing; one core stays for the parent."""
    return max(1, (os.cpu_count() or 2) - 1)


def hash_paths(paths: Sequence[Path | str], options: HashOptions, jobs: int = 1,
               bar: Progress | None = None) -> Iterator[FileSignals]:
    """Every file under ``paths``, archive members included, hashed, in listing order
    (an archive, then its members); listing errors pass through as results."""
    start_early(jobs)  # the workers' fork server loads while the inputs are listed
    entries: list[FileSignals | int] = []  # a listing error, or the index of a unit
    units: list[Unit] = []
    flags: dict[int, tuple[str, ...]] = {}
    for item in iter_items(paths, options.limits, expand_archives=False):
        if item.error is not None:
            entries.append(FileSignals(path=item.path, error=item.error, flags=item.flags))
            continue
        flags[len(units)] = item.flags
        entries.append(len(units))
        units.append(Unit(item.path, size=item.size or 0))
        if item.kind is not None:
            entries.append(len(units))
            units.append(Unit(item.path, archive=True, size=item.size or 0))
    total = len(entries)
    task = bar.add_task("hashing", total=total) if bar is not None else None
    ordered = _Ahead(in_order(run(units, options, jobs)))
    done = 0
    for entry in entries:
        if isinstance(entry, FileSignals):
            results: Iterator[FileSignals] = iter([entry])
        else:
            results = _unit_results(entry, ordered, flags.get(entry, ()))
        for r in results:
            yield r
            done += 1
            if bar is not None and task is not None:
                total = max(total, done)
                bar.update(task, completed=done, total=total)


class _Ahead:
    """The next (unit, result) not yet taken, so one unit's results can be taken alone."""

    def __init__(self, ordered: Iterator[tuple[int, FileSignals]]) -> None:
        self.ordered = ordered
        self.next: tuple[int, FileSignals] | None = None

    def take(self, unit: int) -> FileSignals | None:
        if self.next is None:
            self.next = next(self.ordered, None)
        if self.next is None or self.next[0] != unit:
            return None
        result, self.next = self.next[1], None
        return result


def _unit_results(unit: int, ordered: _Ahead, flags: tuple[str, ...]) -> Iterator[FileSignals]:
    """Every result of one unit (a file: one; an archive: one per member), the listing's
    flags given to a file's result."""
    while (r := ordered.take(unit)) is not None:
        if flags:
            r.flags = flags
        yield r
