"""Grouping the unknown: near-duplicates and shared capture devices form candidate series.

Unknown material matters most: it points to children not yet identified. Images within
the PDQ threshold of each other are one group (connected components over exact index
hits); components whose images come from the same capture device (same make, model and
serial number) are merged, since one camera usually means one production. Groups are
ranked for review by a score that grows with size and with a shared device. Unknown videos
join a group when they match each other as vPDQ does (80% of either video's frames).
"""

from __future__ import annotations

import io
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from vigil.index import HammingIndex, codes_from_hex
from vigil.index.video import MIN_QUERY_PCT, VideoIndex
from vigil.signals.vpdq import read_vpdq
from vigil.triage.scandb import GroupRow

#: A shared device counts like this many extra members when ranking.
DEVICE_WEIGHT = 3.0


@dataclass(frozen=True, slots=True)
class Unknown:
    """An unmatched image item: what grouping needs to know about it."""

    sha256: str
    pdq: str | None
    quality: int
    device: str | None
    exif: dict[str, Any]
    format: str | None
    #: a video's vPDQ text; unknown videos group with each other by vPDQ matching
    vpdq: str | None = None


class _UnionFind:
    """Union-find over item positions, 5 bytes per item: grouping a million unknown items
    must not cost the scan's parent process a Python object per item."""

    def __init__(self, n: int) -> None:
        self.parent = array("i", range(n))
        #: 1 for positions ever joined to another: only these are in a group of two or more
        self.touched = bytearray(n)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
            self.touched[a] = self.touched[b] = 1


#: PDQ queries per index search while linking: bounds the hits held at once.
SEARCH_CHUNK = 1024
#: Codes per index while linking: every code is searched against one index of this many
#: at a time, so the index's memory stays the same however many items are unknown.
#: Measured on 500k unknown items in groups of 10: 262,144 peaked 137 MB over the
#: process's baseline in 88 s, 131,072 at 96 MB in 103 s.
SUB_INDEX = 131072


class CodeSource(Protocol):
    """Where linking reads usable PDQ codes back from, so they need not be held in memory:
    the scan reads them from scan.db (``ScanDB.staged_codes``)."""

    def codes(self, first: int, last: int) -> bytes:
        """The usable codes of the items at positions ``first..last`` (inclusive), in
        position order, 32 bytes each."""
        ...


#: (phase, done, total): how a scan's long phases report how far they are
Progress = Callable[[str, int, int], None]
#: The progress display's names for the two steps of grouping.
SEARCHING = "grouping: searching"
GROUPED = "grouping: writing groups"
#: Members between two reports of ``GROUPED`` (a report per group would cost more than
#: the display is worth at hundreds of thousands of groups).
PROGRESS_EVERY = 1024


class Gathered:
    """What grouping must hold for every unknown item, by position: whether its PDQ is
    usable, a pair of positions for a shared serial-numbered device, a video's vPDQ text.
    The 32-byte codes are held here only without a ``source`` (the in-memory reference);
    with one they are read back a sub-index or a chunk of queries at a time. Everything
    else about an item (EXIF, format) is read again for group members only."""

    def __init__(self, min_quality: int = 50, by_device: bool = True,
                 source: CodeSource | None = None) -> None:
        self.min_quality = min_quality
        self.by_device = by_device
        self.source = source
        self.n = 0
        self._codes = bytearray()
        self._coded = array("i")  # positions of the items with a usable PDQ
        self._device_first: dict[str, int] = {}
        self.device_pairs = array("i")  # flat (first, i) pairs: same serial-numbered device
        self.videos: list[tuple[int, str]] = []
        self.sub_index = SUB_INDEX
        self.search_chunk = SEARCH_CHUNK

    def add(self, pdq: str | None, quality: int, device: str | None,
            vpdq: str | None = None) -> None:
        """The next item (position ``n``)."""
        i = self.n
        self.n += 1
        if pdq and quality >= self.min_quality:
            if self.source is None:
                self._codes += bytes.fromhex(pdq)
            self._coded.append(i)
        if self.by_device and device and "|" in device and device.rsplit("|", 1)[1]:
            first = self._device_first.setdefault(device, i)
            if first != i:
                self.device_pairs.extend((first, i))
        if vpdq:
            self.videos.append((i, vpdq))

    def _read(self, lo: int, hi: int) -> NDArray[np.uint8]:
        """Codes number ``lo..hi-1`` among the usable ones, as an (n, 32) array."""
        if self.source is None:
            raw = memoryview(self._codes)[32 * lo:32 * hi]
        else:
            raw = memoryview(self.source.codes(self._coded[lo], self._coded[hi - 1]))
            if len(raw) != 32 * (hi - lo):
                raise RuntimeError("the scan's unknown items changed while grouping them")
        return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32)

    def components(self, threshold: int, progress: Progress | None = None
                   ) -> Iterator[list[int]]:
        """Positions joined by PDQ within ``threshold``, by vPDQ, or by a shared device:
        every component of two or more, each in ascending order, in order of its first
        position. Searched a chunk of queries at a time and read off one at a time.
        ``progress(SEARCHING, done, total)`` hears of each chunk searched, and
        ``progress(GROUPED, done, total)`` of the members of the components the caller
        has taken (a large scan spends minutes here)."""
        uf = _UnionFind(self.n)
        coded = np.frombuffer(self._coded, dtype=np.int32)
        n = len(coded)
        steps = -(-n // self.sub_index) * -(-n // self.search_chunk) if n > 1 else 0
        step = 0
        if n > 1:
            for s in range(0, n, self.sub_index):
                e = min(n, s + self.sub_index)
                # Tables whatever the size: every code is a query here, so the tables pay
                # for themselves at any size (9k codes: 0.37 s against 1.61 s scanned),
                # and compacting keeps a small index out of the brute-force delta.
                index = HammingIndex(strategy="tables")
                index.add(self._read(s, e), coded[s:e].astype(np.int64))
                index.compact()
                for k in range(0, n, self.search_chunk):
                    q = min(n, k + self.search_chunk)
                    res = index.search(self._read(k, q), threshold)
                    for row, i in enumerate(coded[k:q].tolist()):
                        for j, _d in res.matches(row):
                            if j != i:
                                uf.union(i, int(j))
                    step += 1
                    if progress:
                        progress(SEARCHING, step, steps)
                del index
        _link_videos(self.videos, uf)
        pairs = self.device_pairs
        for k in range(0, len(pairs), 2):
            uf.union(pairs[k], pairs[k + 1])
        joined = np.flatnonzero(np.frombuffer(uf.touched, dtype=np.uint8)).astype(np.int32)
        if not len(joined):
            return
        roots = np.fromiter((uf.find(int(i)) for i in joined), dtype=np.int32,
                            count=len(joined))
        order = np.lexsort((joined, roots))
        cuts = np.flatnonzero(np.diff(roots[order])) + 1
        del roots
        comps = np.split(joined[order], cuts)
        del order, joined
        comps.sort(key=lambda c: int(c[0]))
        total, taken, told = sum(len(c) for c in comps), 0, 0
        for c in comps:
            yield c.tolist()
            taken += len(c)
            if progress and (taken - told >= PROGRESS_EVERY or taken == total):
                progress(GROUPED, taken, total)
                told = taken


def gather(items: Iterable[Unknown], min_quality: int = 50, by_device: bool = True
           ) -> Gathered:
    g = Gathered(min_quality, by_device)
    for it in items:
        g.add(it.pdq, it.quality, it.device, it.vpdq)
    return g


def describe(items: list[Unknown]) -> tuple[float, GroupRow]:
    """One group's score and row (id and rank 0 until ranked) from its members' records."""
    devices = Counter(it.device for it in items if it.device)
    top, top_n = devices.most_common(1)[0] if devices else (None, 0)
    shared = top if top_n * 2 > len(items) else None
    score = len(items) + (DEVICE_WEIGHT * top_n / len(items) if shared else 0.0)
    dist = list(zip((it.sha256 for it in items), _distances(items), strict=True))
    return score, GroupRow(id=0, rank=0, size=len(items), score=round(score, 3),
                           device=shared, summary=_summary(items), members=dist)


def rank_key(score: float, row: GroupRow) -> tuple[float, str]:
    """Review order: highest score first, ties by the first member's SHA-256."""
    return -score, row.members[0][0]


def rank_groups(components: Iterable[list[int]],
                detail: Callable[[list[int]], list[Unknown]]) -> list[GroupRow]:
    """Ranked groups from components; ``detail`` gives the members' full records (read
    for group members only, so the unknown items need not all be held)."""
    described = [describe(detail(members)) for members in components]
    described.sort(key=lambda d: rank_key(*d))
    return [replace(row, id=rank, rank=rank)
            for rank, (_, row) in enumerate(described, start=1)]


def group_unknown(items: list[Unknown], threshold: int = 31, min_quality: int = 50,
                  by_device: bool = True) -> list[GroupRow]:
    """Ranked groups (size >= 2) of unknown images; singletons without a device stay out.

    All items in memory: the reference for the scan's streamed grouping, which gathers
    the same way and reads members' records back from scan.db."""
    comps = gather(items, min_quality, by_device).components(threshold)
    return rank_groups(comps, lambda members: [items[i] for i in members])


def _link_videos(videos: list[tuple[int, str]], uf: _UnionFind) -> None:
    """Join videos that match each other as vPDQ does (80% of either video's frames)."""
    if len(videos) < 2:
        return
    parsed = [(i, read_vpdq(io.StringIO(text))) for i, text in videos]
    index = VideoIndex()
    index.add_many(parsed)
    found = index.search_many([f for _, f in parsed], min_query_pct=0.0)
    for (i, _), matches in zip(parsed, found, strict=True):
        for vm in matches:
            s = vm.score
            if vm.video_id != i and max(s.query_pct, s.compared_pct) >= MIN_QUERY_PCT:
                uf.union(i, vm.video_id)


def _distances(items: list[Unknown]) -> list[int]:
    """Each member's PDQ distance to the group's first member (-1 when either has no
    PDQ), all in one array operation (``hamming`` one pair at a time is the reference)."""
    first = items[0].pdq
    if not first:
        return [-1] * len(items)
    coded = [k for k, it in enumerate(items) if it.pdq]
    codes = codes_from_hex([first] + [items[k].pdq or "" for k in coded])
    out = [-1] * len(items)
    for k, d in zip(coded, np.bitwise_count(codes[1:] ^ codes[0]).sum(axis=1).tolist(),
                    strict=True):
        out[k] = int(d)
    return out


def _summary(members: list[Unknown]) -> dict[str, Any]:
    dates = sorted(str(m.exif["datetime_original"]) for m in members
                   if m.exif.get("datetime_original"))
    return {
        "devices": dict(Counter(m.device for m in members if m.device).most_common()),
        "formats": dict(Counter(m.format or "unknown" for m in members).most_common()),
        "capture_first": dates[0] if dates else None,
        "capture_last": dates[-1] if dates else None,
        "with_gps": sum(1 for m in members if m.exif.get("gps")),
    }
