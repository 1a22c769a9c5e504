"""The review queue: what no bank knows, in the order the triage report ranks it.

Order: the scan's unknown groups by rank (``vigil.triage.grouping``: size and a shared
capture device first), then the unknown images and videos in no group, in the order the
scan found them. Known material (matched to a bank) is never in the queue: someone
already assessed it, and the review shows it as counts only (``known``).

The queue is a list of units (a group, or one item) of item numbers; what is decided is
filtered out when a unit is shown, so an item a reviewer decided is never shown again and
positions stay stable while people work. ``build_queue`` here reads the whole queue into
Python objects: it is the plain reference. A review opens the same queue kept in SQLite
and read a step at a time (``vigil.review.sqlqueue``), which opens a large scan several
times faster; both answer ``ReviewQueue``, and the tests compare them.

Items are named by a number (the scan's first file row of that content), never by a hash,
in every URL and page.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Unit:
    """One step of the queue: a ranked group of near-duplicates, or one single item."""

    pos: int
    kind: str  # group | item
    group_id: int | None
    rank: int | None
    score: float | None
    device: str | None
    summary: dict[str, Any]
    items: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """What the page may say about an item: never a path's bytes unescaped, never a hash."""

    id: int
    sha256: str
    kind: str | None
    format: str | None
    name: str
    paths: int
    thumb: bool
    distance: int | None = None
    #: a video's keyframes the scan kept (0: none; older scans kept only its thumbnail)
    frames: int = 0


def item_name(path: str) -> str:
    """The name an item is shown by: its first file's name, without folders or archives."""
    return str(path).rsplit("/", 1)[-1].rsplit("!/", 1)[-1]


class ReviewQueue(Protocol):
    """What a review session reads of its queue (the plain ``Queue`` and ``SqlQueue``)."""

    @property
    def units(self) -> Sequence[Unit]: ...

    @property
    def items(self) -> Mapping[int, ItemInfo]: ...

    @property
    def unit_of(self) -> Mapping[int, int]: ...

    @property
    def by_sha(self) -> Mapping[str, int]: ...

    @property
    def known_items(self) -> int: ...

    @property
    def known_by_category(self) -> dict[str, int]: ...

    def remaining(self, unit: Unit, decided: set[str]) -> list[int]: ...

    def next_open(self, start: int, decided: set[str], step: int = 1) -> int | None: ...

    def open_units(self, decided: set[str]) -> int: ...

    def decided_count(self, decided: set[str]) -> int: ...


@dataclass(slots=True)
class Queue:
    """The units, the items they hold, and the known material as counts."""

    units: list[Unit] = field(default_factory=list)
    items: dict[int, ItemInfo] = field(default_factory=dict)
    unit_of: dict[int, int] = field(default_factory=dict)  # item id -> unit pos
    by_sha: dict[str, int] = field(default_factory=dict)   # sha256 -> item id
    known_items: int = 0
    known_by_category: dict[str, int] = field(default_factory=dict)

    def remaining(self, unit: Unit, decided: set[str]) -> list[int]:
        """The unit's items not decided yet, in order."""
        return [i for i in unit.items if self.items[i].sha256 not in decided]

    def next_open(self, start: int, decided: set[str], step: int = 1) -> int | None:
        """The first unit at or after ``start`` (before, with ``step=-1``) with an
        undecided item, or None."""
        pos = start
        while 0 <= pos < len(self.units):
            if self.remaining(self.units[pos], decided):
                return pos
            pos += step
        return None

    def open_units(self, decided: set[str]) -> int:
        """Units with an undecided item (counted from the decided side: cheap while few
        are decided, whatever the queue's length)."""
        per_unit = Counter(self.unit_of[self.by_sha[s]] for s in decided if s in self.by_sha)
        full = sum(1 for pos, n in per_unit.items() if n >= len(self.units[pos].items))
        return len(self.units) - full

    def decided_count(self, decided: set[str]) -> int:
        return sum(1 for s in decided if s in self.by_sha)


def build_queue(conn: sqlite3.Connection) -> Queue:
    """Read the whole queue from a finished scan's database into Python objects: the
    reference ``SqlQueue`` is tested against."""
    import json

    q = Queue()
    known = {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM matches")}
    q.known_items = len(known)
    for scheme, cat, n in conn.execute(
            "SELECT category_scheme, category, count(DISTINCT sha256) FROM matches "
            "GROUP BY category_scheme, category"):
        key = f"{scheme}:{cat}" if scheme else "uncategorised"
        q.known_by_category[key] = q.known_by_category.get(key, 0) + n
    thumbs = {r[0] for r in conn.execute("SELECT sha256 FROM thumbs")}
    frames = dict(conn.execute("SELECT sha256, count(*) FROM keyframes GROUP BY sha256"))
    rows = conn.execute(
        "SELECT f.sha256, f.id, g.n, f.kind, f.format, f.path FROM files f JOIN ("
        " SELECT min(id) AS id, count(*) AS n FROM files WHERE status = 'done' AND "
        " sha256 IS NOT NULL AND kind IN ('image', 'video') GROUP BY sha256"
        ") g ON f.id = g.id ORDER BY f.id").fetchall()
    for sha, fid, n, kind, fmt, path in rows:
        if sha in known:
            continue
        q.items[fid] = ItemInfo(fid, sha, kind, fmt, item_name(path), n, sha in thumbs,
                                frames=frames.get(sha, 0))
        q.by_sha[sha] = fid
    members: dict[int, list[tuple[int, int]]] = {}
    for gid, sha, dist in conn.execute(
            "SELECT group_id, sha256, distance FROM group_members "
            "ORDER BY group_id, distance, sha256"):
        fid = q.by_sha.get(sha)
        if fid is not None:
            members.setdefault(gid, []).append((fid, dist))
    grouped: set[int] = set()
    for gid, rank, score, device, summary in conn.execute(
            "SELECT id, rank, score, device, summary FROM groups ORDER BY rank, id"):
        ids = members.get(gid, [])
        if not ids:
            continue
        pos = len(q.units)
        for fid, dist in ids:
            q.items[fid] = replace(q.items[fid], distance=dist if dist >= 0 else None)
            q.unit_of[fid] = pos
            grouped.add(fid)
        q.units.append(Unit(pos, "group", gid, rank, score, device,
                            json.loads(summary) if summary else {},
                            tuple(fid for fid, _ in ids)))
    for fid in q.items:  # insertion order: first appearance in the scan
        if fid in grouped:
            continue
        pos = len(q.units)
        q.unit_of[fid] = pos
        q.units.append(Unit(pos, "item", None, None, None, None, {}, (fid,)))
    return q
