"""The review queue kept in SQLite, read a step at a time: what ``vigil review`` opens.

Why: the plain queue (``vigil.review.queue.build_queue``) makes Python objects for every
item and every step when a scan is opened, and its SQL reads every file's row (profiled at
100k items: about 40% of the time in Python, the rest in SQL; bench/RESULTS.md). Here
opening a scan runs a few SQL statements that write the queue's order into temporary
tables of the review's own connection (in memory, gone when it closes), over the covering
index ``ix_files_item`` of ``scan.db``; only the steps of single items are held in Python,
as one array of item numbers. An item's or a step's details are read when a page asks for
them, and the few a page shows are cached.

What the queue shows and its order are the plain queue's, and the tests compare the two
on generated scans (tests/review/test_sqlqueue.py):

``rq_units(pos, group_id)``        the groups with at least one unknown member, by rank
``rq_members(pos, ord, id, dist)`` their unknown members, by distance then SHA-256
``rq_items(id, paths, pos, distance)``
                                   every unknown image or video (its first file's id), with
                                   its group's step (NULL for an item in no group: those
                                   follow the groups, one step each, in file order:
                                   ``SqlQueue.singles``)

An item's SHA-256 is read from ``files`` by its number (the first file's row), and an
item is found by SHA-256 through ``files``' own index: the one file of that content in
``rq_items`` is the item.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

from vigil.review.queue import ItemInfo, Unit, item_name

#: the unknown images and videos: one row per SHA-256, its first file and how many files
#: (index-only over ``ix_files_item``, in SHA-256 order)
_ITEMS = ("SELECT min(id) AS id, sha256, count(*) AS n FROM files WHERE status = 'done' "
          "AND sha256 IS NOT NULL AND kind IN ('image', 'video') GROUP BY sha256")

#: an item in two groups (never from the scan's grouping: groups are components) belongs to
#: the later one, as in the plain queue (``rq_last``: SQLite takes the bare column
#: ``distance`` from the row of ``max(pos)``). ``+f.kind``: one index probe per member on
#: (status, sha256), the kind read from the index entry
_BUILD = f"""
DROP TABLE IF EXISTS temp.rq_gm;
DROP TABLE IF EXISTS temp.rq_last;
DROP TABLE IF EXISTS temp.rq_units;
DROP TABLE IF EXISTS temp.rq_members;
DROP TABLE IF EXISTS temp.rq_items;
CREATE TEMP TABLE rq_gm AS
  SELECT * FROM (
    SELECT m.group_id AS group_id, m.sha256 AS sha256, m.distance AS distance,
           (SELECT min(f.id) FROM files f WHERE f.status = 'done' AND f.sha256 = m.sha256
            AND +f.kind IN ('image', 'video')) AS id
    FROM group_members m
    WHERE NOT EXISTS (SELECT 1 FROM matches k WHERE k.sha256 = m.sha256))
  WHERE id IS NOT NULL;
CREATE INDEX temp.rq_gm_group ON rq_gm(group_id);
CREATE TEMP TABLE rq_units (pos INTEGER PRIMARY KEY, group_id INTEGER NOT NULL);
INSERT INTO rq_units(pos, group_id)
  SELECT row_number() OVER (ORDER BY g.rank, g.id) - 1, g.id FROM groups g
  WHERE g.id IN (SELECT group_id FROM rq_gm);
CREATE TEMP TABLE rq_members (pos INTEGER NOT NULL, ord INTEGER NOT NULL,
                              id INTEGER NOT NULL, distance INTEGER NOT NULL,
                              PRIMARY KEY (pos, ord));
INSERT INTO rq_members(pos, ord, id, distance)
  SELECT u.pos, row_number() OVER (PARTITION BY u.pos ORDER BY x.distance, x.sha256) - 1,
         x.id, x.distance
  FROM rq_units u JOIN rq_gm x ON x.group_id = u.group_id;
DROP TABLE temp.rq_gm;
CREATE TEMP TABLE rq_last (id INTEGER PRIMARY KEY, pos INTEGER NOT NULL,
                           distance INTEGER NOT NULL);
INSERT INTO rq_last(id, pos, distance)
  SELECT id, max(pos), distance FROM rq_members GROUP BY id;
CREATE TEMP TABLE rq_items (id INTEGER PRIMARY KEY, paths INTEGER NOT NULL, pos INTEGER,
                            distance INTEGER);
INSERT INTO rq_items(id, paths, pos, distance)
  SELECT u.id, u.n, l.pos, l.distance FROM ({_ITEMS}) u LEFT JOIN rq_last l ON l.id = u.id
  WHERE u.sha256 NOT IN (SELECT sha256 FROM matches) ORDER BY u.id;
DROP TABLE temp.rq_last;
"""

#: SQLite's bound parameters per statement are kept well under its limit
_CHUNK = 500
_ITEM_CACHE = 8192
_UNIT_CACHE = 1024


class SqlQueue:
    """The review queue of one scan over the review's connection (see the module).

    ``units``, ``items``, ``unit_of`` and ``by_sha`` read like the plain queue's list and
    dicts; every read holds ``lock`` (the review store's), as the connection is shared by
    the server's threads.
    """

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock
        self._items: OrderedDict[int, ItemInfo] = OrderedDict()
        #: steps already read (a page reads its step several times: route, view, decide)
        self._units: OrderedDict[int, Unit] = OrderedDict()
        #: item -> step, for the items looked up by SHA-256 (decided ones: a few per action)
        self._pos_of_sha: dict[str, int | None] = {}
        with lock:
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.executescript(_BUILD)
            sizes = conn.execute("SELECT pos, count(*) FROM rq_members GROUP BY pos "
                                 "ORDER BY pos").fetchall()
            #: the items in no group, by number: step ``groups + k`` is ``singles[k]``
            self.singles = array("q", (r[0] for r in conn.execute(
                "SELECT id FROM rq_items WHERE pos IS NULL ORDER BY id")))
            self._n_items = int(conn.execute("SELECT count(*) FROM rq_items").fetchone()[0])
            known = conn.execute("SELECT count(DISTINCT sha256) FROM matches").fetchone()[0]
            by_cat: dict[str, int] = {}
            for scheme, cat, n in conn.execute(
                    "SELECT category_scheme, category, count(DISTINCT sha256) FROM matches "
                    "GROUP BY category_scheme, category"):
                key = f"{scheme}:{cat}" if scheme else "uncategorised"
                by_cat[key] = by_cat.get(key, 0) + n
        #: the group steps come first; members per group step
        self.groups = len(sizes)
        self._sizes = array("q", (n for _, n in sizes))
        self._n_units = self.groups + len(self.singles)
        self.known_items = int(known)
        self.known_by_category = by_cat
        self.units = _Units(self)
        self.items = _Items(self)
        self.unit_of = _UnitOf(self)
        self.by_sha = _BySha(self)

    # ---- reading ---------------------------------------------------------------------------

    def _rows(self, sql: str, args: Iterable[object] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    def unit_at(self, pos: int) -> Unit:
        if not 0 <= pos < self._n_units:
            raise IndexError(pos)
        with self._lock:
            unit = self._units.get(pos)
            if unit is None:
                unit = self._units[pos] = self._read_unit(pos)
                while len(self._units) > _UNIT_CACHE:
                    self._units.popitem(last=False)
            else:
                self._units.move_to_end(pos)
        self.item_infos(unit.items)  # the page shows them next
        return unit

    def _read_unit(self, pos: int) -> Unit:
        if pos >= self.groups:
            fid = self.singles[pos - self.groups]
            return Unit(pos, "item", None, None, None, None, {}, (fid,))
        rows = self._rows(
            "SELECT g.id, g.rank, g.score, g.device, g.summary FROM rq_units u JOIN groups g "
            "ON g.id = u.group_id WHERE u.pos = ?", (pos,))
        gid, rank, score, device, summary = rows[0]
        ids = tuple(int(r[0]) for r in self._rows(
            "SELECT id FROM rq_members WHERE pos = ? ORDER BY ord", (pos,)))
        return Unit(pos, "group", gid, rank, score, device,
                    json.loads(summary) if summary else {}, ids)

    def item_infos(self, ids: Sequence[int]) -> dict[int, ItemInfo]:
        """What the page may say about each of ``ids`` that is in the queue."""
        out: dict[int, ItemInfo] = {}
        missing = []
        with self._lock:
            for i in ids:
                hit = self._items.get(i)
                if hit is None:
                    missing.append(i)
                else:
                    self._items.move_to_end(i)
                    out[i] = hit
            for k in range(0, len(missing), _CHUNK):
                part = missing[k:k + _CHUNK]
                for fid, sha, kind, fmt, path, n, thumb, dist, frames in self._conn.execute(
                        "SELECT q.id, f.sha256, f.kind, f.format, f.path, q.paths, "
                        "EXISTS (SELECT 1 FROM thumbs t WHERE t.sha256 = f.sha256), q.distance, "
                        "(SELECT count(*) FROM keyframes k WHERE k.sha256 = f.sha256) "
                        f"FROM rq_items q JOIN files f ON f.id = q.id WHERE q.id IN "
                        f"({', '.join('?' * len(part))})", part):
                    info = ItemInfo(fid, sha, kind, fmt, item_name(path), n, bool(thumb),
                                    dist if dist is not None and dist >= 0 else None, frames)
                    out[fid] = self._items[fid] = info
            while len(self._items) > _ITEM_CACHE:
                self._items.popitem(last=False)
        return out

    def step_of(self, item: int, pos: int | None) -> int:
        """An item's step, from its ``rq_items.pos`` (NULL for an item in no group)."""
        return pos if pos is not None else self.groups + bisect_left(self.singles, item)

    def positions(self, shas: Iterable[str]) -> list[int]:
        """The step of each of ``shas`` that is in the queue (absent ones are skipped)."""
        names = list(shas)
        with self._lock:
            cache = self._pos_of_sha
            todo = [s for s in dict.fromkeys(names) if s not in cache]
            for k in range(0, len(todo), _CHUNK):
                part = todo[k:k + _CHUNK]
                found = {sha: self.step_of(fid, pos) for sha, fid, pos in self._conn.execute(
                    "SELECT f.sha256, q.id, q.pos FROM files f JOIN rq_items q ON q.id = f.id "
                    f"WHERE f.sha256 IN ({', '.join('?' * len(part))})", part)}
                for s in part:
                    cache[s] = found.get(s)
            return [p for p in (cache[s] for s in names) if p is not None]

    def _shas_between(self, lo: int, hi: int) -> dict[int, list[str]]:
        """Each step's SHA-256s for the steps in ``[lo, hi)``."""
        out: dict[int, list[str]] = {}
        if lo < self.groups:
            for pos, sha in self._rows(
                    "SELECT m.pos, f.sha256 FROM rq_members m JOIN files f ON f.id = m.id "
                    "WHERE m.pos >= ? AND m.pos < ? ORDER BY m.pos, m.ord",
                    (lo, min(hi, self.groups))):
                out.setdefault(pos, []).append(sha)
        if hi > self.groups:
            first = max(lo, self.groups)
            ids = self.singles[first - self.groups:hi - self.groups]
            sha_of = dict(self._rows(
                "SELECT q.id, f.sha256 FROM rq_items q JOIN files f ON f.id = q.id WHERE "
                "q.id >= ? AND q.id <= ? AND q.pos IS NULL", (ids[0], ids[-1])))
            for k, fid in enumerate(ids):
                out[first + k] = [sha_of[fid]]
        return out

    # ---- what the session asks -------------------------------------------------------------

    def remaining(self, unit: Unit, decided: set[str]) -> list[int]:
        """The unit's items not decided yet, in order."""
        infos = self.item_infos(unit.items)
        return [i for i in unit.items if infos[i].sha256 not in decided]

    def next_open(self, start: int, decided: set[str], step: int = 1) -> int | None:
        """The first step at or after ``start`` (before, with ``step=-1``) with an undecided
        item, or None; steps are read a page at a time, pages growing as they pass."""
        if not 0 <= start < self._n_units:
            return None
        if not decided:
            return start
        page = 64
        pos = start
        while 0 <= pos < self._n_units:
            lo, hi = (pos, min(pos + page, self._n_units)) if step > 0 \
                else (max(0, pos - page + 1), pos + 1)
            shas = self._shas_between(lo, hi)
            order = range(lo, hi) if step > 0 else range(hi - 1, lo - 1, -1)
            for p in order:
                if any(s not in decided for s in shas.get(p, ())):
                    return p
            pos = hi if step > 0 else lo - 1
            page = min(page * 4, 16384)
        return None

    def open_units(self, decided: set[str]) -> int:
        """Steps with an undecided item, counted from the decided side."""
        per_unit = Counter(self.positions(decided))
        full = sum(1 for pos, n in per_unit.items()
                   if n >= (self._sizes[pos] if pos < self.groups else 1))
        return self._n_units - full

    def decided_count(self, decided: set[str]) -> int:
        return len(self.positions(decided))


class _Units(Sequence[Unit]):
    """The steps, as a read-only list."""

    def __init__(self, q: SqlQueue) -> None:
        self._q = q

    def __len__(self) -> int:
        return self._q._n_units

    @overload
    def __getitem__(self, pos: int) -> Unit: ...

    @overload
    def __getitem__(self, pos: slice) -> list[Unit]: ...

    def __getitem__(self, pos: int | slice) -> Unit | list[Unit]:
        if isinstance(pos, slice):
            return [self._q.unit_at(p) for p in range(*pos.indices(len(self)))]
        if pos < 0:
            pos += len(self)
        return self._q.unit_at(pos)


class _Items(Mapping[int, ItemInfo]):
    """Item number -> ``ItemInfo``, in the order the scan found the items."""

    def __init__(self, q: SqlQueue) -> None:
        self._q = q

    def __getitem__(self, item: int) -> ItemInfo:
        if not isinstance(item, int):
            raise KeyError(item)
        got = self._q.item_infos([item])
        if item not in got:
            raise KeyError(item)
        return got[item]

    def __iter__(self) -> Iterator[int]:
        return iter([int(r[0]) for r in self._q._rows("SELECT id FROM rq_items "
                                                           "ORDER BY id")])

    def __len__(self) -> int:
        return self._q._n_items


class _UnitOf(Mapping[int, int]):
    """Item number -> its step."""

    def __init__(self, q: SqlQueue) -> None:
        self._q = q

    def __getitem__(self, item: int) -> int:
        rows = self._q._rows("SELECT pos FROM rq_items WHERE id = ?", (item,)) \
            if isinstance(item, int) else []
        if not rows:
            raise KeyError(item)
        return self._q.step_of(item, rows[0][0])

    def __iter__(self) -> Iterator[int]:
        grouped = [int(r[0]) for r in self._q._rows(
            "SELECT id FROM rq_items WHERE pos IS NOT NULL ORDER BY pos, id")]
        return iter([*grouped, *self._q.singles])

    def __len__(self) -> int:
        return self._q._n_items


class _BySha(Mapping[str, int]):
    """SHA-256 -> item number (for decisions, which name items by their SHA-256)."""

    def __init__(self, q: SqlQueue) -> None:
        self._q = q

    def __getitem__(self, sha: str) -> int:
        rows = self._q._rows("SELECT q.id FROM files f JOIN rq_items q ON q.id = f.id "
                             "WHERE f.sha256 = ?", (sha,)) if isinstance(sha, str) else []
        if not rows:
            raise KeyError(sha)
        return int(rows[0][0])

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self._q._rows(
            "SELECT f.sha256 FROM rq_items q JOIN files f ON f.id = q.id ORDER BY q.id")])

    def __len__(self) -> int:
        return self._q._n_items
