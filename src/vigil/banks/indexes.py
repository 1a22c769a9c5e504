"""Keeping the engine's indexes in step with the bank store.

The store is the truth; indexes are a cache of it that must never be stale in a way a
matcher can see. Each index generation on disk records the id of the last change it
includes (its *checkpoint*). Opening the indexes loads the newest generation
memory-mapped and replays the change log after its checkpoint (adds and removals only;
relabels do not touch indexes), so new entries are matchable and removed ones are gone
at once, without a rebuild. A new generation is written when the replayed tail grows
large, so the replay stays short. ``rebuild()`` recreates everything from the store.

Layout under ``folder``: ``CURRENT`` (JSON: generation, checkpoint, store fingerprint) and
``gen-NNNNNN/{pdq,pdq_derived,pdq_featured,md5,sha1,sha256}/`` as written by
``vigil.index``. ``pdq_derived`` holds the derived codes of banks with a crop ladder
(``vigil.banks.derived``; ids pack the entry id and the window); ``pdq_featured`` the anchor
codes of their pictures that have local features, for the second stage
(``vigil.banks.featured``; ids pack the entry id and the anchor).

The tail is read by change id, which is safe because writers commit change ids in order
(``Banks.apply`` takes a PostgreSQL advisory lock; SQLite has one writer at a time). Generations are
written to a temporary folder and published by an atomic rename of ``CURRENT``, so a
crash mid-write leaves the previous generation intact.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from vigil.banks.derived import all_derived_ids, stored_codes
from vigil.banks.featured import all_anchor_ids, anchor_codes
from vigil.index import (
    DIGEST_SIZES,
    ExactIndex,
    HammingIndex,
    SearchResult,
    codes_from_hex,
    digests_from_hex,
)
from vigil.index.arrays import Codes, Digests
from vigil.index.video import VideoIndex, VideoMatch
from vigil.signals.vpdq import VpdqFrame, read_vpdq
from vigil.store.models import Bank, Change, Entry

EXACT_SIZES = DIGEST_SIZES
INDEXED_TYPES = ("pdq", *EXACT_SIZES)
#: Write a new generation once this many changes have been replayed on top of the last.
SAVE_AFTER = 50_000
_CHUNK = 50_000
#: replay a tail of up to this many changes (or the index's size, if larger); rebuild beyond
REBUILD_AFTER = 1_000_000


def store_fingerprint(engine: Engine) -> str:
    """Identifies the store an index was built from, so another store's index is not reused."""
    return hashlib.sha256(engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Current:
    """``CURRENT``: the published generation's folder, the last change it includes, and
    the store it was built from."""

    generation: str
    checkpoint: int
    store: str


def _parse(signal_type: str, values: list[str]) -> Codes | Digests:
    if signal_type == "pdq":
        return codes_from_hex(values)
    return digests_from_hex(values, EXACT_SIZES[signal_type])


class BankIndexes:
    """One index per indexed signal type over all banks' live entries (ids = entry ids)."""

    def __init__(self, engine: Engine, folder: str | Path) -> None:
        self.engine = engine
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.checkpoint = 0
        self.generation_checkpoint = 0
        self.pdq = HammingIndex()
        self.derived = HammingIndex()
        self.featured = HammingIndex(strategy="scan")  # searched at a wide radius
        self.exact = {t: ExactIndex(n) for t, n in EXACT_SIZES.items()}
        self._video: VideoIndex | None = None
        #: told the ids of the entries each replayed change touched (None: possibly all,
        #: after a rebuild), so a cache of entries (``vigil.api.runtime.entries``) can drop them
        self.on_touched: Callable[[Iterable[int] | None], None] | None = None
        if not self._load():
            self.rebuild()
        self.sync()

    # ---- persistence ---------------------------------------------------------------------

    def _current(self) -> _Current | None:
        """The published generation; None when there is none or ``CURRENT`` is damaged
        (the caller then rebuilds from the store, the truth)."""
        try:
            raw = json.loads((self.folder / "CURRENT").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        gen, checkpoint, store = raw.get("generation"), raw.get("checkpoint"), raw.get("store")
        if (not isinstance(gen, str) or not re.fullmatch(r"gen-\d+", gen)
                or not isinstance(checkpoint, int) or not isinstance(store, str)):
            return None
        return _Current(gen, checkpoint, store)

    def _load(self) -> bool:
        cur = self._current()
        if cur is None or cur.store != store_fingerprint(self.engine):
            return False
        gen = self.folder / cur.generation
        try:
            self.pdq = HammingIndex.load(gen / "pdq")
            self.derived = HammingIndex.load(gen / "pdq_derived")
            self.featured = HammingIndex.load(gen / "pdq_featured")
            self.exact = {t: ExactIndex.load(gen / t) for t in EXACT_SIZES}
        except (OSError, ValueError, KeyError):
            return False  # damaged or from an older format: rebuild from the store
        self.checkpoint = self.generation_checkpoint = cur.checkpoint
        return True

    def save(self) -> None:
        """Write the current state as a new generation and publish it atomically.

        Several processes (CLI runs, server workers) may share the folder: one writes at a
        time, and a writer skips when a generation at least as new is already published.
        """
        with open(self.folder / ".save.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cur = self._current()
            if (cur is not None and cur.store == store_fingerprint(self.engine)
                    and cur.checkpoint >= self.checkpoint
                    and (self.folder / cur.generation).is_dir()):
                self.generation_checkpoint = self.checkpoint
                return
            self._write_generation()

    def _write_generation(self) -> None:
        name = f"gen-{self.checkpoint:012d}"
        tmp = self.folder / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.pdq.save(tmp / "pdq")
        self.derived.save(tmp / "pdq_derived")
        self.featured.save(tmp / "pdq_featured")
        for t, idx in self.exact.items():
            idx.save(tmp / t)
        final = self.folder / name
        if final.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
        manifest = {"generation": name, "checkpoint": self.checkpoint,
                    "store": store_fingerprint(self.engine)}
        cur_tmp = self.folder / f".CURRENT.tmp-{os.getpid()}"
        cur_tmp.write_text(json.dumps(manifest))
        os.replace(cur_tmp, self.folder / "CURRENT")
        self.generation_checkpoint = self.checkpoint
        for old in self.folder.glob("gen-*"):
            if old.name != name:  # open memory maps of old files stay valid on POSIX
                shutil.rmtree(old, ignore_errors=True)

    # ---- keeping in step -----------------------------------------------------------------

    def rebuild(self) -> None:
        """Recreate every index from the store's live entries (the store is the truth)."""
        with Session(self.engine) as s, s.begin():
            checkpoint = s.scalar(select(func.max(Change.id))) or 0
            self.pdq = HammingIndex()
            self.exact = {t: ExactIndex(n) for t, n in EXACT_SIZES.items()}
            for t in INDEXED_TYPES:
                q = (select(Entry.id, Entry.value)
                     .where(Entry.signal_type == t, Entry.removed.is_(False))
                     .execution_options(yield_per=_CHUNK))
                # read in chunks, build once: adding chunk by chunk re-indexed everything
                # read so far at every add (509 s for 10M entries, measured)
                codes, ids = [], []
                for rows in s.execute(q).partitions(_CHUNK):
                    ids.append(np.array([r[0] for r in rows], dtype=np.int64))
                    codes.append(_parse(t, [r[1] for r in rows]))
                if ids:
                    idx = self._index(t)
                    idx.add(np.concatenate(codes), np.concatenate(ids))
                    del codes, ids
                    if idx.pending():
                        idx.compact()
            self.derived = HammingIndex()
            self.featured = HammingIndex(strategy="scan")  # searched at a wide radius
            ladder_q = (select(Entry.id, Entry.extra, Entry.value, Entry.quality)
                        .join(Bank, Bank.id == Entry.bank_id)
                        .where(Bank.crop_ladder.is_(True), Entry.signal_type == "pdq",
                               Entry.removed.is_(False))
                        .execution_options(yield_per=_CHUNK))
            for part in s.execute(ladder_q).partitions(_CHUNK):
                self._add_derived([(r[0], r[1]) for r in part])
                self._add_featured([(r[0], r[2], r[3], r[1]) for r in part])
            for idx in (self.derived, self.featured):
                if idx.pending():
                    idx.compact()
        self.checkpoint = checkpoint
        self.save()

    def _add_derived(self, entries: Sequence[tuple[int, Any]]) -> None:
        found = [c for eid, extra in entries for c in stored_codes(eid, extra)]
        if found:
            self.derived.add(codes_from_hex([h for _, h in found]),
                             np.array([i for i, _ in found], dtype=np.int64))

    def _add_featured(self, entries: Sequence[tuple[int, str, int | None, Any]]) -> None:
        found = [c for eid, value, quality, extra in entries
                 for c in anchor_codes(eid, value, quality, extra)]
        if found:
            self.featured.add(codes_from_hex([h for _, h in found]),
                              np.array([i for i, _ in found], dtype=np.int64))

    def _index(self, signal_type: str) -> HammingIndex | ExactIndex:
        return self.pdq if signal_type == "pdq" else self.exact[signal_type]

    def _tail(self, s: Session) -> Iterator[Sequence[tuple[int, str, int, str, str, bool,
                                                            Any, bool, int | None]]]:
        """The changes after the checkpoint to indexed types, in id order, in chunks: (change
        id, op, entry id, and the entry as it is now: type, value, removed, extra, whether
        its bank keeps a crop ladder, and its quality)."""
        # an entry's extra is read only where a ladder may be in it (a bulk import's tail
        # of a million entries would otherwise carry every entry's JSON for nothing)
        ladder_extra = case((Bank.crop_ladder.is_(True), Entry.extra), else_=None)
        q = (select(Change.id, Change.op, Change.entry_id, Entry.signal_type, Entry.value,
                    Entry.removed, ladder_extra, Bank.crop_ladder, Entry.quality)
             .join(Entry, Entry.id == Change.entry_id)
             .join(Bank, Bank.id == Entry.bank_id)
             .where(Change.id > self.checkpoint, Change.signal_type.in_(INDEXED_TYPES))
             .order_by(Change.id).execution_options(yield_per=_CHUNK))
        yield from s.execute(q).partitions(_CHUNK)  # rows are typed tuples

    def head(self) -> int:
        """The newest change id in the store (the index is current when it equals
        ``checkpoint``)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(Change.id))).scalar() or 0

    def sync(self) -> int:
        """Replay changes after the checkpoint; returns how many were applied.

        A tail longer than the index itself (a bulk import, a first mirror sync) is not
        replayed chunk by chunk: building once from the store is several times cheaper.
        """
        with Session(self.engine) as s:
            top = s.scalar(select(func.max(Change.id))) or 0
        size = (len(self.pdq) + len(self.derived) + len(self.featured)
                + sum(len(x) for x in self.exact.values()))
        if top - self.checkpoint > max(REBUILD_AFTER, size):
            before = self.checkpoint
            self._video = None
            self.rebuild()
            if self.on_touched is not None:
                self.on_touched(None)
            return self.checkpoint - before
        applied = 0
        with Session(self.engine) as s, s.begin():
            top = s.scalar(select(func.max(Change.id))) or 0
            if self._video is not None and s.scalar(
                    select(func.count()).select_from(Change).where(
                        Change.id > self.checkpoint, Change.signal_type == "vpdq",
                        Change.op.in_(("add", "remove")))):
                self._video = None  # rebuilt on the next video query
            for part in self._tail(s):
                # The joined entry row is its state now (the truth), so every entry touched
                # in the tail is taken out of its index and put back if it is live.
                # An update changes no code of its own (a relabel concerns entry caches
                # only), but it may give a picture in a bank with a ladder other derived
                # codes (a re-index, a peer's record): those are taken out and put back.
                touched: dict[str, dict[int, tuple[str, bool]]] = {t: {} for t in INDEXED_TYPES}
                ladders: dict[int, Any] = {}
                rederived: set[int] = set()
                featured: dict[int, tuple[str, int | None, Any]] = {}
                for _cid, op, entry_id, t, value, removed, extra, ladder, quality in part:
                    if op != "update":
                        touched[t][entry_id] = (value, removed)
                    elif t == "pdq" and ladder:
                        rederived.add(entry_id)
                    if t == "pdq" and ladder and not removed:
                        ladders[entry_id] = extra
                        featured[entry_id] = (value, quality, extra)
                if self.on_touched is not None:
                    self.on_touched([row[2] for row in part])
                for t, items in touched.items():
                    if not items:
                        continue
                    idx = self._index(t)
                    idx.remove(np.fromiter(items, dtype=np.int64, count=len(items)))
                    live = [(i, v) for i, (v, removed) in items.items() if not removed]
                    if live:
                        idx.add(_parse(t, [v for _, v in live]),
                                np.array([i for i, _ in live], dtype=np.int64))
                rederived.update(touched["pdq"])
                if rederived and len(self.derived):
                    self.derived.remove(np.array(all_derived_ids(rederived), dtype=np.int64))
                self._add_derived(list(ladders.items()))
                if rederived and len(self.featured):
                    self.featured.remove(np.array(all_anchor_ids(rederived), dtype=np.int64))
                self._add_featured([(e, v, q, x) for e, (v, q, x) in featured.items()])
                applied += len(part)
            self.checkpoint = max(self.checkpoint, top)
        if self.checkpoint - self.generation_checkpoint >= SAVE_AFTER or (
                applied and self.generation_checkpoint == 0):
            self.save()
        return applied

    # ---- queries ---------------------------------------------------------------------------

    # ---- the matcher's index (``vigil.matching.SignalIndex``) ------------------------------

    def search_pdq(self, codes: Codes, radius: int) -> SearchResult:
        """Every live PDQ entry within ``radius`` bits of each query code."""
        return self.pdq.search(codes, radius)

    def search_pdq_derived(self, codes: Codes, radius: int) -> SearchResult:
        """Every live banked derived code within ``radius`` bits (ids: derived ids)."""
        return self.derived.search(codes, radius)

    def search_pdq_featured(self, codes: Codes, radius: int) -> SearchResult:
        """Every live anchor code of a banked picture with features within ``radius`` bits
        (ids: anchor ids; ``vigil.banks.featured``)."""
        return self.featured.search(codes, radius)

    def lookup(self, signal_type: str, values: list[str]) -> SearchResult:
        """Live entries holding each exact digest (``EXACT_SIZES`` types)."""
        return self.exact[signal_type].lookup(_parse(signal_type, values))

    def search_videos(self, queries: Sequence[Sequence[VpdqFrame]]) -> list[list[VideoMatch]]:
        """Banked videos matching each query's frames (``video()`` is their index)."""
        return self.video().search_many(queries)

    def video(self) -> VideoIndex:
        """The index of every live ``vpdq`` entry's frames (ids = entry ids).

        Built in memory from the store on first use and after any video change; not
        persisted (video banks are far smaller than image banks; see README limits).
        """
        if self._video is None:
            index = VideoIndex()
            with Session(self.engine) as s:
                q = (select(Entry.id, Entry.extra)
                     .where(Entry.signal_type == "vpdq", Entry.removed.is_(False))
                     .execution_options(yield_per=1000))
                videos = [(int(i), read_vpdq(io.StringIO(str((extra or {}).get("vpdq", "")))))
                          for i, extra in s.execute(q)]
            index.add_many(videos)
            self._video = index
        return self._video

    def sizes(self) -> dict[str, int]:
        """Live entries per indexed signal type."""
        return {t: len(self._index(t)) for t in INDEXED_TYPES}
