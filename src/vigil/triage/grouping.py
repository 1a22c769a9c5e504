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
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.index import HammingIndex, codes_from_hex, hamming
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
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_unknown(items: list[Unknown], threshold: int = 31, min_quality: int = 50,
                  by_device: bool = True) -> list[GroupRow]:
    """Ranked groups (size >= 2) of unknown images; singletons without a device stay out."""
    uf = _UnionFind(len(items))
    hashed = [i for i, it in enumerate(items) if it.pdq and it.quality >= min_quality]
    if len(hashed) > 1:
        index = HammingIndex()
        codes = codes_from_hex([items[i].pdq for i in hashed])  # type: ignore[misc]
        index.add(codes, np.asarray(hashed, dtype=np.int64))
        res = index.search(codes, threshold)
        for k, i in enumerate(hashed):
            for j, _d in res.matches(k):
                if j != i:
                    uf.union(i, int(j))
    _link_videos(items, uf)
    if by_device:
        first_of: dict[str, int] = {}
        for i, it in enumerate(items):
            if it.device and "|" in it.device and it.device.rsplit("|", 1)[1]:  # has a serial
                uf.union(first_of.setdefault(it.device, i), i)
    comps: dict[int, list[int]] = {}
    for i in range(len(items)):
        comps.setdefault(uf.find(i), []).append(i)
    groups = []
    for members in comps.values():
        if len(members) < 2:
            continue
        devices = Counter(items[i].device for i in members if items[i].device)
        top, top_n = devices.most_common(1)[0] if devices else (None, 0)
        shared = top if top_n * 2 > len(members) else None
        score = len(members) + (DEVICE_WEIGHT * top_n / len(members) if shared else 0.0)
        seed = members[0]
        dist = [(items[i].sha256, _distance(items[seed], items[i])) for i in members]
        groups.append((score, members, shared, dist))
    groups.sort(key=lambda g: (-g[0], items[g[1][0]].sha256))
    return [GroupRow(id=rank, rank=rank, size=len(members), score=round(score, 3),
                     device=shared, summary=_summary([items[i] for i in members]),
                     members=dist)
            for rank, (score, members, shared, dist) in enumerate(groups, start=1)]


def _link_videos(items: list[Unknown], uf: _UnionFind) -> None:
    """Join videos that match each other as vPDQ does (80% of either video's frames)."""
    videos = [(i, read_vpdq(io.StringIO(it.vpdq))) for i, it in enumerate(items) if it.vpdq]
    if len(videos) < 2:
        return
    index = VideoIndex()
    index.add_many(videos)
    found = index.search_many([f for _, f in videos], min_query_pct=0.0)
    for (i, _), matches in zip(videos, found, strict=True):
        for vm in matches:
            s = vm.score
            if vm.video_id != i and max(s.query_pct, s.compared_pct) >= MIN_QUERY_PCT:
                uf.union(i, vm.video_id)


def _distance(a: Unknown, b: Unknown) -> int:
    """PDQ distance to the group's first member (-1 when either has no usable PDQ)."""
    return hamming(a.pdq, b.pdq) if a.pdq and b.pdq else -1


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
