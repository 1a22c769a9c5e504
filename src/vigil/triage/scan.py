"""``vigil scan``: a seizure in, a ranked, categorised, resumable triage out.

The flow, and why it is resumable: (1) enumerate the evidence (folders, files, archive
members) and register every file as ``pending`` in DIR/scan.db; (2) hash pending files in
worker processes (``vigil.signals.runner``) — steps 1 and 2 overlap (``Listing``: a file
is registered before it is handed out) — committing results as they arrive — a kill
of the scan loses at most the files in flight, and a rerun picks up the rest; a worker
that dies is replaced, and the file it held is retried once, then recorded as an error
(``worker-died``); (3) match every distinct item against the
banks; (4) group the unknown images; (5) render the report and exports from scan.db.
Steps 3–5 are recomputed from the database on every run, so a resumed scan ends with
exactly the results of an uninterrupted one. ``meta.phase`` names the step a run is in
(``finished`` once it is done): a scan being resumed keeps its earlier finish time while
its matches and groups are recomputed, and only the phase tells a reader (the review)
that they are not settled yet.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from vigil import __version__
from vigil.matching import Matcher
from vigil.signals.evidence import SEP, Limits, iter_items
from vigil.signals.forkstart import start_early
from vigil.signals.options import VariantOption
from vigil.signals.runner import Unit, run
from vigil.triage.cluster import run_on_ray
from vigil.triage.grouping import Gathered, Progress, Unknown, describe
from vigil.triage.leads import MatchAsHashed
from vigil.triage.raylink import spill_folder
from vigil.triage.rows import hash_options, scan_row
from vigil.triage.scandb import FileRow, ScanDB

#: Commit results at least this often (seconds): bounds the work lost to a kill.
COMMIT_EVERY = 0.5

T = TypeVar("T")


class ScanError(Exception):
    """The scan cannot start as asked (e.g. DIR holds a scan of other evidence)."""


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """Everything that defines a scan; stored in scan.db so a rerun can check it."""

    inputs: tuple[str, ...]
    banks: tuple[str, ...] | None = None  # None: every bank
    threshold: int = 31
    dihedral: bool = False
    #: derived-code matching (``vigil.matching.variants``): off, borders, crops, all
    variants: VariantOption = "off"
    min_quality: int = 50
    mode: str = "fast"
    thumbnails: str = "blurred"  # blurred | clear | none
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: hash as Ray tasks: a cluster's address, ``auto`` (the one ``ray start`` made
    #: here) or ``local`` (a private one on this machine); None: worker processes here.
    #: Not part of the identity: a scan may be resumed on Ray or locally either way.
    ray: str | None = None

    def identity(self) -> dict[str, Any]:
        """What must not change between a scan and its resumption."""
        return {"inputs": [os.path.abspath(p) for p in self.inputs], "mode": self.mode}


@dataclass(slots=True)
class ScanStats:
    """What a run did (for the one-screen summary and for benchmarks)."""

    registered: int = 0
    hashed: int = 0
    errors: int = 0
    #: files a previous run of this scan had already finished
    skipped_done: int = 0
    seconds: dict[str, float] = field(default_factory=dict)




def units_of(paths: list[str]) -> list[Unit]:
    """One unit per outermost archive for all its pending members, then one per plain
    file: the reference for what ``Listing`` hands out (in another order). Members of a
    compressed tar can only be reached by decompressing everything before them: one
    worker reads the whole archive once, instead of once per member."""
    plain: list[Unit] = []
    members: dict[str, set[str]] = {}
    for p in paths:
        outer, sep, _ = p.partition(SEP)
        if sep:
            members.setdefault(outer, set()).add(p)
        else:
            plain.append(Unit(p))
    return [Unit(a, archive=True, members=frozenset(m)) for a, m in members.items()] + plain


def run_scan(out: Path, options: ScanOptions, matcher: Matcher | None,
             progress: Progress | None = None) -> ScanStats:
    """Run (or resume) a scan into ``out``; returns what this run did."""
    out.mkdir(parents=True, exist_ok=True)
    db = ScanDB(out / "scan.db")
    stats = ScanStats()
    try:
        stored = db.get_meta("identity")
        if stored is not None and stored != options.identity():
            raise ScanError(f"{out} holds a scan of other evidence ({', '.join(stored['inputs'])})"
                            "; use another --out folder")
        _same_spelling(db, options, out)
        db.set_meta("identity", options.identity())
        db.set_meta("options", {**asdict(options), "inputs": list(options.inputs)})
        db.set_meta("vigil_version", __version__)
        if db.get_meta("started_at") is None:
            db.set_meta("started_at", time.time())
        runs = (db.get_meta("runs") or 0) + 1
        db.set_meta("runs", runs)

        t = time.perf_counter()
        if not options.ray:
            start_early(options.jobs)  # the workers' fork server loads while we list
        # Before the listing: its error rows are this run's findings, not earlier work.
        stats.skipped_done = db.file_count() - db.pending_count()
        stats.seconds["enumerate"] = 0.0
        db.set_meta("phase", "hashing")  # the listing goes on alongside (``Listing``)
        early = None if matcher is None else MatchAsHashed(out / "scan.db", options, matcher)
        if early is not None:
            early.start()
        try:
            _hash_pending(db, options, stats, progress, spill_folder(out), early)
        except BaseException:
            if early is not None:
                early.abandon()
            raise
        stats.seconds["hash"] = time.perf_counter() - t

        t = time.perf_counter()
        db.set_meta("phase", "matching")
        if early is not None:
            _finish_matching(early, progress)
        stats.seconds["match"] = time.perf_counter() - t

        t = time.perf_counter()
        db.set_meta("phase", "grouping")
        _group(db, options, progress)
        stats.seconds["group"] = time.perf_counter() - t
        db.set_meta("finished_at", time.time())
        db.set_meta("phase", "finished")
        return stats
    finally:
        db.close()


def _same_spelling(db: ScanDB, options: ScanOptions, out: Path) -> None:
    """Refuse to resume with the same evidence named another way (``../ev`` then
    ``/cases/ev``): files are recorded by the path as given, so every file would be
    registered and hashed a second time under its other name."""
    before = (db.get_meta("options") or {}).get("inputs")
    if before is not None and list(before) != list(options.inputs):
        raise ScanError(f"{out} holds a scan of this evidence named "
                        f"{' '.join(repr(p) for p in before)}; resume it with the inputs "
                        "written the same way (from the same folder if they are relative), or "
                        "its files would be counted twice")


#: Items listed per step while the workers hash: a step is a few milliseconds, so the
#: parent is never away from its workers for long.
LIST_STEP = 256
#: Pending files read from scan.db at once.
PAGE = 5000


class Listing:
    """The work of a scan, found as the evidence is listed: what ``run`` hashes.

    Listing a seizure takes minutes at millions of files (every file is opened, to find
    archives by content), so hashing does not wait for it: the listing goes on a step at a
    time whenever the workers need more than is registered. Each step registers its files
    as pending in scan.db (its listing errors become error rows) before any is handed out,
    so a kill at any point leaves a database a rerun resumes from. Hand-out order: files
    pending from an earlier run, then new files as they are listed, then, once the
    listing is complete (only then is every member of an archive known), one unit per
    outermost archive, then the rest. ``left`` is None until the listing is complete.
    """

    def __init__(self, db: ScanDB, options: ScanOptions, stats: ScanStats) -> None:
        self.db, self.stats = db, stats
        self.steps = _chunked(iter_items(list(options.inputs), Limits()), LIST_STEP)
        self.files = db.file_count()  # every file row: the progress total
        #: files this run's listing found unreadable (error rows, never handed out)
        self.refused = 0
        self.left: int | None = None

    def __iter__(self) -> Iterator[Unit]:
        last, listed = 0, False
        while True:
            page = self.db.pending_plain_after(last, PAGE)
            if page:
                last = page[-1][0]
                for _, path, size in page:
                    self._handed()
                    yield Unit(path, size=size)
            elif listed:
                return
            elif not self._step():
                listed = True
                archives = self.db.pending_archives()
                self.left = len(archives) + self.db.pending_plain_count_after(last)
                for outer in archives:
                    self._handed()
                    members = self.db.pending_under(outer)
                    yield Unit(outer, archive=True, members=frozenset(p for p, _ in members),
                               size=sum(size for _, size in members))

    def remaining(self) -> int | None:
        """Units not handed out yet; None until the listing is complete."""
        return self.left

    def _handed(self) -> None:
        if self.left is not None:
            self.left -= 1

    def _step(self) -> bool:
        """List and register the next few items; False once the listing is complete."""
        t = time.perf_counter()
        try:
            chunk = next(self.steps, None)
            if chunk is None:
                return False
            added = self.db.add_pending((it.path, it.container, it.size, it.mtime, it.flags)
                                        for it in chunk)
            self.stats.registered += added
            self.files += added
            errors = [{"path": it.path, "status": "error", "error_code": it.error.code,
                       "error_message": it.error.cause} for it in chunk
                      if it.error is not None]
            if errors:
                # Only rows still pending: a resumed scan never rewrites what it decided.
                pending = self.db.pending_among([e["path"] for e in errors])
                self.db.record([e for e in errors if e["path"] in pending])
                self.refused += len(pending)
            return True
        finally:
            self.stats.seconds["enumerate"] += time.perf_counter() - t


def _chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _hash_pending(db: ScanDB, options: ScanOptions, stats: ScanStats,
                  progress: Progress | None, spill: Path,
                  early: MatchAsHashed | None = None) -> None:
    """List the evidence and hash what is pending, committing results at least every
    ``COMMIT_EVERY`` seconds; each commit's items go to ``early`` to be matched while
    hashing goes on."""
    done = stats.skipped_done
    work = hash_options(options.mode, options.dihedral, options.thumbnails != "none",
                        options.variants)
    batch: list[dict[str, Any]] = []
    thumbs: list[tuple[str, bytes]] = []
    frames: list[tuple[str, int, float, bytes]] = []
    last = time.monotonic()
    listing = Listing(db, options, stats)
    batches = run_on_ray(iter(listing), work, options.ray, spill, options.jobs,
                         listing.remaining) if options.ray \
        else run(iter(listing), work, options.jobs, listing.remaining)
    for hashed in batches:
        for h in hashed.results:
            r = h.result
            batch.append(scan_row(r))
            if r.thumbnail is not None and r.digests is not None:
                thumbs.append((r.digests.sha256, r.thumbnail))
            if r.digests is not None:
                frames.extend((r.digests.sha256, n, k.seconds, k.jpeg)
                              for n, k in enumerate(r.keyframes))
            stats.hashed += 1
            stats.errors += r.error is not None
        if time.monotonic() - last >= COMMIT_EVERY:
            _commit(db, batch, thumbs, frames, early)
            batch, thumbs, frames, last = [], [], [], time.monotonic()
        if progress:
            progress("hashing", done + listing.refused + stats.hashed, listing.files)
    _commit(db, batch, thumbs, frames, early)


def _commit(db: ScanDB, batch: list[dict[str, Any]], thumbs: list[tuple[str, bytes]],
            frames: list[tuple[str, int, float, bytes]], early: MatchAsHashed | None) -> None:
    db.record(batch, thumbs, frames)
    if early is not None:
        early.add(r["sha256"] for r in batch if r["status"] == "done" and r.get("sha256"))


def _finish_matching(early: MatchAsHashed, progress: Progress | None) -> None:
    """Wait for the matching thread to match what is left, showing its progress."""
    while not early.finish(timeout=0.25):
        if progress and early.total:
            progress("matching", early.done, early.total)
    if progress and early.total:
        progress("matching", early.total, early.total)


def _group(db: ScanDB, options: ScanOptions, progress: Progress | None = None) -> None:
    """Group the unknown items, holding per item only what linking needs (``Gathered``:
    whether its PDQ is usable, a device pair, a video's vPDQ): codes and SHA-256 are read
    back from a temporary table of scan.db by position, and the full records of group
    members afterwards. Equal to ``group_unknown`` over every unknown item
    (tests/triage/test_scan_grouping.py)."""
    db.stage_unknown()
    try:
        gathered = Gathered(options.min_quality, source=_StagedCodes(db, options.min_quality))
        for pdq, quality, device, vpdq in db.staged_signals():
            gathered.add(pdq, quality, device, vpdq)

        db.replace_groups_ranked(describe(members) for members in
                                 _detailed(db, gathered.components(options.threshold,
                                                                   progress)))
    finally:
        db.unstage_unknown()


#: Group members whose records are read from scan.db at once: two queries per batch of
#: groups rather than per group (most groups are small), and a bounded batch in memory.
DETAIL_BATCH = 4096


def _detailed(db: ScanDB, components: Iterable[list[int]]) -> Iterator[list[Unknown]]:
    """Each component's members as full records, in the components' order, read a batch
    of components at a time."""
    batch: list[list[int]] = []
    size = 0
    for members in components:
        batch.append(members)
        size += len(members)
        if size >= DETAIL_BATCH:
            yield from _details_of(db, batch)
            batch, size = [], 0
    if batch:
        yield from _details_of(db, batch)


def _details_of(db: ScanDB, components: list[list[int]]) -> Iterator[list[Unknown]]:
    names = db.staged_shas([p for members in components for p in members])
    rows = db.unknown_details(names)
    k = 0
    for members in components:
        yield [_unknown(rows[s]) for s in names[k:k + len(members)]]
        k += len(members)


class _StagedCodes:
    """``CodeSource`` over the staged unknown items of a scan.db."""

    def __init__(self, db: ScanDB, min_quality: int) -> None:
        self.db, self.min_quality = db, min_quality

    def codes(self, first: int, last: int) -> bytes:
        return self.db.staged_codes(first, last, self.min_quality)


def _unknown(f: FileRow) -> Unknown:
    # Only what grouping's summary reads of the EXIF.
    exif: dict[str, Any] = {k: f.exif[k] for k in ("datetime_original", "gps") if k in f.exif}
    return Unknown(f.sha256 or "", f.pdq, f.pdq_quality or 0, f.device, exif, f.format, f.vpdq)


__all__ = ["ScanError", "ScanOptions", "ScanStats", "run_scan"]
