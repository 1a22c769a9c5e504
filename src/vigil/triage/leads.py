"""Matching a scan's items against the banks, while its files are still being hashed.

Why a thread: with ``-j N`` the scan's parent mostly waits for the workers' results, and
matching after hashing left every core but one idle for its whole duration. Here the parent
hands each committed batch's SHA-256s to a thread, which reads those items' signals back
from scan.db (``ScanDB.signal_rows``: the first file's, no paths or EXIF) and matches them
as the workers go on; when hashing ends, only the items an earlier run hashed (a resumed
scan) are left to match.

The result is the same as matching every item after hashing (``match_all``, the
reference; tests/triage/test_scan_leads.py): each item is matched once per run, from its
row as recorded (the same queries either way), and matches are read back ordered by
content, never by when they were found. The thread has its own connection to scan.db, so
the parent's commits and its own are ordinary SQLite transactions one after another.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from vigil.matching import Matcher, queries_of, video_detail
from vigil.signals.options import VariantOption
from vigil.triage.rows import signals_of
from vigil.triage.scandb import ItemRow, MatchRow, ScanDB, SignalRow


class ScanOptions(Protocol):
    """What matching reads of a scan's options (``vigil.triage.scan.ScanOptions``)."""

    @property
    def banks(self) -> tuple[str, ...] | None: ...
    @property
    def threshold(self) -> int: ...
    @property
    def dihedral(self) -> bool: ...
    @property
    def variants(self) -> VariantOption: ...
    @property
    def min_quality(self) -> int: ...

#: Items matched per call of the matcher (its batches are the fast path).
MATCH_BATCH = 2000


def leads_of(items: Sequence[ItemRow | SignalRow], options: ScanOptions,
             matcher: Matcher) -> Iterator[MatchRow]:
    """The match rows of a batch of recorded items."""
    queries = [queries_of(signals_of(it), options.dihedral) for it in items]
    outcomes = matcher.match(queries, threshold=options.threshold,
                             bank_names=list(options.banks) if options.banks else None,
                             min_quality=options.min_quality, variants=options.variants)
    for it, outcome in zip(items, outcomes, strict=True):
        for m, signals in outcome.leads():
            lab = m.entry.labels
            cat = lab.category or (None, None)
            yield MatchRow(it.sha256, m.entry.bank, m.entry.origin_agency, m.entry.id,
                           m.signal_type, sorted(signals), m.variant, m.distance,
                           cat[0], cat[1], lab.series, lab.victim_status, list(lab.tags),
                           video_detail(m.video) if m.video
                           else {"inliers": m.inliers} if m.inliers is not None else None)


def match_all(db: ScanDB, options: ScanOptions, matcher: Matcher) -> None:
    """Match every item after hashing, replacing all matches: the reference."""
    db.replace_matches(row for chunk in db.iter_items(MATCH_BATCH)
                       for row in leads_of(chunk, options, matcher))


class MatchAsHashed:
    """A thread that matches items as the scan records them (see the module's text).

    ``start`` forgets the previous run's matches; ``add`` takes the SHA-256s of files just
    recorded (duplicates and items seen before are skipped); ``finish`` matches whatever
    was not added (items of earlier runs) and waits; ``abandon`` stops it without that.
    ``done``/``total`` tell progress. An error in the thread is raised again by ``finish``.
    """

    def __init__(self, path: Path, options: ScanOptions, matcher: Matcher) -> None:
        self.path, self.options, self.matcher = path, options, matcher
        self.inbox: queue.Queue[list[str] | None] = queue.Queue()
        self.done = 0
        self.total = 0
        self.error: BaseException | None = None
        self._closing = False
        self._abandoned = False
        self.thread = threading.Thread(target=self._run, name="vigil-scan-matching",
                                       daemon=True)

    def start(self) -> None:
        db = ScanDB(self.path)
        try:
            db.clear_matches()
        finally:
            db.close()
        self.thread.start()

    def add(self, shas: Iterable[str]) -> None:
        self.inbox.put(list(shas))

    def finish(self, timeout: float | None = None) -> bool:
        """Ask the thread to match what is left and wait up to ``timeout`` seconds (None:
        until it is done); True once it is. Raises the thread's error, if any."""
        if self.thread.is_alive() and not self._closing:
            self._closing = True
            self.inbox.put(None)
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return not self.thread.is_alive()

    def abandon(self) -> None:
        """Stop without matching what is left (the scan failed or was interrupted: a rerun
        matches everything again)."""
        self._abandoned = True
        self.inbox.put(None)
        self.thread.join(timeout=10)

    def _run(self) -> None:
        db = ScanDB(self.path)
        try:
            while (shas := self._next_batch()) is not None:
                if not self._abandoned:
                    self._match(db, db.claim(shas))
            if self._abandoned:
                return
            self.total = db.item_count()
            for chunk in db.iter_items(MATCH_BATCH, unclaimed=True):
                db.add_matches(list(leads_of(chunk, self.options, self.matcher)))
                self.done += len(chunk)
        except BaseException as exc:  # raised again in the parent's thread by finish()
            self.error = exc
        finally:
            db.close()

    def _next_batch(self) -> list[str] | None:
        """Everything waiting in the inbox, up to a matcher batch (blocks for the first)."""
        first = self.inbox.get()
        if first is None:
            return None
        out = first
        while len(out) < MATCH_BATCH:
            try:
                more = self.inbox.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self.inbox.put(None)  # seen again by the next call
                break
            out.extend(more)
        return out

    def _match(self, db: ScanDB, fresh: list[str]) -> None:
        if not fresh:
            return
        items = db.signal_rows(fresh)
        db.add_matches(list(leads_of(items, self.options, self.matcher)))
        self.done += len(items)


__all__ = ["MATCH_BATCH", "MatchAsHashed", "leads_of", "match_all"]
