"""The scan database: everything one ``vigil scan`` learned, and its progress, in DIR/scan.db.

Why a database and not memory: a scan of a million files must survive ``kill -9`` and
resume where it stopped without hashing anything twice. Every file's result is committed
as it arrives; a rerun skips files already ``done``/``error``. The report, the CSV/JSONL
results and the VICS export are all rendered from this file alone.

SQLite (WAL) via the standard library: a local work file needs no server, and one writer
(the scan's parent process) with many readers is exactly SQLite's sweet spot.

Tables
------
``meta(key, value)``              scan settings and timestamps (JSON values)
``files``                         one row per input file (virtual path); signals, EXIF, status
``matches``                       one row per (file, bank entry) lead; labels copied at scan time
``groups`` / ``group_members``    near-duplicate groups of unknown images, ranked for review
``thumbs(sha256, jpeg)``          small thumbnails (clear, max 160 px) for the report; the report
                                  blurs and greys them unless told otherwise
``keyframes(sha256, n, ...)``     a video's keyframes (small greyscale JPEGs, spread over it) for
                                  the review; a video's thumbnail is one of them

Tables and columns added after version 1 first shipped are created in place when a scan
is opened (``CREATE TABLE IF NOT EXISTS``, ``_COLUMNS``), so an older scan opens: it
simply has none of what they hold (an older scan's videos have their one thumbnail and
no keyframes).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from vigil.signals.evidence import SEP

SCHEMA_VERSION = 1

#: File ids ``lo <= id < hi``: one part of the exports, written by one process.
Span = tuple[int, int]

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- virtual path (archive members: outer.zip!/inner.jpg)
    container TEXT,                     -- virtual path of the archive it came from, if any
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | done | error
    size INTEGER,
    mtime REAL,
    kind TEXT,                          -- image | video | archive | other
    format TEXT,                        -- e.g. JPEG, PNG, ZIP (sniffed from content)
    width INTEGER,
    height INTEGER,
    md5 TEXT, sha1 TEXT, sha256 TEXT,
    pdq TEXT, pdq_quality INTEGER,
    pdq_dihedral TEXT,                  -- JSON list: the 7 rotated/mirrored variants, if asked
    vpdq TEXT,                          -- videos: vPDQ text (frame,quality,pdq_hex,seconds)
    exif TEXT,                          -- JSON: make, model, serial, datetime_original, gps
    device TEXT,                        -- capture device key (make|model|serial) or NULL
    error_code TEXT, error_message TEXT,
    seconds REAL,                       -- worker time spent on this file
    flags TEXT,                         -- JSON list: what the listing saw (embedded-archive, ...)
    pdq_derived TEXT,                   -- JSON list: [window, hex, quality] derived codes, if asked
    pdq_features TEXT                   -- packed local features (--variants features), if asked
);
CREATE INDEX IF NOT EXISTS ix_files_status ON files(status);
CREATE INDEX IF NOT EXISTS ix_files_sha256 ON files(sha256);
-- the items (one per SHA-256) of what was hashed, read from the index alone: what the review
-- queue is built from (vigil.review.sqlqueue)
CREATE INDEX IF NOT EXISTS ix_files_item ON files(status, sha256, kind);
CREATE TABLE IF NOT EXISTS matches (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,               -- the item (identical files share one)
    bank TEXT NOT NULL, agency TEXT NOT NULL, entry_id INTEGER NOT NULL,
    signal_type TEXT NOT NULL,          -- md5 | sha1 | sha256 | pdq | ...
    signals TEXT NOT NULL,              -- JSON list: every signal type that hit this entry's record
    variant TEXT NOT NULL,              -- original, or the dihedral variant that matched
    distance INTEGER NOT NULL,
    category_scheme TEXT, category TEXT, series TEXT,
    victim_status TEXT NOT NULL, tags TEXT NOT NULL,
    detail TEXT,                        -- JSON: video matches' percentages and time ranges,
                                        -- or a second-stage lead's inliers
    UNIQUE (sha256, bank, entry_id)
);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    rank INTEGER NOT NULL,              -- 1 = review first
    size INTEGER NOT NULL,              -- distinct items in the group
    score REAL NOT NULL,
    device TEXT,                        -- shared capture device key, if most members share one
    summary TEXT NOT NULL               -- JSON: devices, capture date range, formats...
);
CREATE TABLE IF NOT EXISTS group_members (
    group_id INTEGER NOT NULL, sha256 TEXT NOT NULL, distance INTEGER NOT NULL,
    PRIMARY KEY (group_id, sha256)
);
CREATE TABLE IF NOT EXISTS thumbs (sha256 TEXT PRIMARY KEY, jpeg BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS keyframes (
    sha256 TEXT NOT NULL,
    n INTEGER NOT NULL,                 -- 0, 1, ... in time order
    seconds REAL NOT NULL,              -- nominal time in the video (vPDQ's)
    jpeg BLOB NOT NULL,
    PRIMARY KEY (sha256, n)
);
"""

#: Columns added after schema version 1 first shipped: added in place when missing.
_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "files": [("pdq_dihedral", "TEXT"), ("vpdq", "TEXT"), ("flags", "TEXT"),
              ("pdq_derived", "TEXT"), ("pdq_features", "TEXT")],
    "matches": [("detail", "TEXT")],
}

FILE_COLUMNS = ("path", "container", "status", "size", "mtime", "kind", "format", "width",
                "height", "md5", "sha1", "sha256", "pdq", "pdq_quality", "pdq_dihedral", "vpdq",
                "exif", "device",
                "error_code", "error_message", "seconds", "flags", "pdq_derived", "pdq_features")
#: Columns the listing fills and hashing does not know: a result leaves them as they are.
_LISTED = ("container", "mtime", "flags")


@dataclass(frozen=True, slots=True)
class FileRow:
    """One input file as the scan recorded it."""

    id: int
    path: str
    container: str | None
    status: str
    size: int | None
    mtime: float | None
    kind: str | None
    format: str | None
    width: int | None
    height: int | None
    md5: str | None
    sha1: str | None
    sha256: str | None
    pdq: str | None
    pdq_quality: int | None
    pdq_dihedral: list[str] | None
    vpdq: str | None
    exif: dict[str, Any]
    device: str | None
    error_code: str | None
    error_message: str | None
    seconds: float | None
    #: what the listing observed: embedded-archive, path-traversal, symlink, ...
    flags: list[str] = field(default_factory=list)
    #: derived PDQ codes ([window, hex, quality]) when the scan asked for variants
    pdq_derived: list[list[Any]] | None = None
    #: packed local features (``vigil.signals.features``) when the scan asked for them
    pdq_features: str | None = None


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A lead: an item matched a bank entry (labels as they were at scan time)."""

    sha256: str
    bank: str
    agency: str
    entry_id: int
    signal_type: str
    signals: list[str]
    variant: str
    distance: int
    category_scheme: str | None
    category: str | None
    series: str | None
    victim_status: str
    tags: list[str]
    #: video matches: query_pct, compared_pct, query_ranges, compared_ranges (seconds);
    #: second-stage leads (variant ``features``): inliers
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ItemRow:
    """Identical files (same SHA-256) as one item, with every path it was found at."""

    sha256: str
    paths: list[str]
    kind: str | None
    format: str | None
    size: int | None
    pdq: str | None
    pdq_quality: int | None
    exif: dict[str, Any]
    matches: list[MatchRow] = field(default_factory=list)
    md5: str | None = None
    sha1: str | None = None
    device: str | None = None
    pdq_dihedral: list[str] | None = None
    vpdq: str | None = None
    pdq_derived: list[list[Any]] | None = None
    pdq_features: str | None = None


@dataclass(frozen=True, slots=True)
class SignalRow:
    """An item as matching reads it: its first file's signals and nothing else (no paths,
    no EXIF), so matching as files are hashed reads a tenth of what an ``ItemRow`` costs."""

    sha256: str
    kind: str | None
    format: str | None
    size: int | None
    md5: str | None
    sha1: str | None
    pdq: str | None
    pdq_quality: int | None
    pdq_dihedral: list[str] | None
    vpdq: str | None
    pdq_derived: list[list[Any]] | None
    pdq_features: str | None


_SIGNAL_COLUMNS = ", ".join(SignalRow.__slots__)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group of near-duplicate unknown images, ranked for review."""

    id: int
    rank: int
    size: int
    score: float
    device: str | None
    summary: dict[str, Any]
    members: list[tuple[str, int]]  # (sha256, distance to the group's first member)


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals for the report's first screen."""

    files: int
    done: int
    errors: int
    pending: int
    items: int
    duplicates: int  # files beyond the first of each identical item
    known_items: int
    unknown_images: int
    groups: int
    by_kind: dict[str, int]
    known_by_category: dict[str, int]  # "scheme:value" (or "uncategorised") -> items
    errors_by_code: dict[str, int]
    meta: dict[str, Any]


#: ``status = 'done'`` for lookups by SHA-256: the unary ``+`` keeps SQLite from reading
#: ``ix_files_status`` (nearly every row is done) instead of ``ix_files_sha256``, which made
#: each lookup of a few items scan the whole table (4.6 ms against 0.04 ms at 10k files,
#: and growing with the seizure).
_BY_SHA_DONE = "+status = 'done'"
#: the items this connection has claimed (``ScanDB.claim``); per connection, never stored
_CLAIMED = "CREATE TEMP TABLE IF NOT EXISTS claimed (sha256 TEXT PRIMARY KEY)"


class ScanDB:
    """Read and write one scan's database. Not shared across processes for writing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # the version first: a scan written by another Vigil is refused before anything
        # in it is changed
        has_meta = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        version = self.get_meta("schema_version") if has_meta else None
        if version is not None and version != SCHEMA_VERSION:
            self.conn.close()
            raise ValueError(f"{self.path}: scan database version {version}, written by "
                             f"another Vigil (this one reads version {SCHEMA_VERSION}): "
                             "resume it with the Vigil that wrote it, or rerun the scan "
                             "into a new folder")
        self.conn.executescript(DDL)
        self._add_missing_columns()
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)

    def _add_missing_columns(self) -> None:
        """Columns added since a scan.db was created (a scan resumed by a newer Vigil)."""
        for table, ddl in _COLUMNS.items():
            have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in ddl:
                if name not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    def close(self) -> None:
        self.conn.close()

    # ---- meta --------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                          "UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    # ---- writing (the scan) --------------------------------------------------------------

    def add_pending(self, rows: Iterable[tuple[str, str | None, int | None, float | None]
                                         | tuple[str, str | None, int | None, float | None,
                                                 Iterable[str]]]) -> int:
        """Register files (path, container, size, mtime[, flags]) not seen before; returns
        how many."""
        def with_flags(r: tuple[Any, ...]) -> tuple[Any, ...]:
            flags = list(r[4]) if len(r) > 4 else []
            return (*r[:4], json.dumps(flags) if flags else None)

        cur = self.conn.cursor()
        cur.execute("BEGIN")
        before = self.conn.total_changes
        cur.executemany("INSERT OR IGNORE INTO files(path, container, size, mtime, flags) "
                        "VALUES (?, ?, ?, ?, ?)", (with_flags(r) for r in rows))
        cur.execute("COMMIT")
        return self.conn.total_changes - before

    def pending_paths(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT path FROM files WHERE status = 'pending' ORDER BY id")]

    def file_count(self) -> int:
        """Every file row, whatever its status."""
        return int(self.conn.execute("SELECT count(*) FROM files").fetchone()[0])

    def pending_count(self) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM files WHERE status = 'pending'").fetchone()[0])

    def pending_among(self, paths: list[str]) -> set[str]:
        """Which of ``paths`` are still pending (a chunk of the listing at a time)."""
        out: set[str] = set()
        for k in range(0, len(paths), 500):
            part = paths[k:k + 500]
            out.update(r[0] for r in self.conn.execute(
                f"SELECT path FROM files WHERE status = 'pending' AND path IN "
                f"({', '.join('?' * len(part))})", part))
        return out

    def pending_plain_after(self, last: int, page: int = 5000) -> list[tuple[int, str, int]]:
        """(id, path, size as listed or 0) of up to ``page`` pending files outside
        archives registered after row ``last``, in registration order: ids only grow, so
        files registered while a reader pages through are found by its next page (the
        parent never holds the whole listing)."""
        return [(int(r[0]), r[1], int(r[2] or 0)) for r in self.conn.execute(
            "SELECT id, path, size FROM files WHERE status = 'pending' AND id > ? AND "
            "instr(path, ?) = 0 ORDER BY id LIMIT ?", (last, SEP, page))]

    def pending_plain_count_after(self, last: int) -> int:
        """How many pending files outside archives were registered after row ``last``."""
        return int(self.conn.execute(
            "SELECT count(*) FROM files WHERE status = 'pending' AND id > ? AND "
            "instr(path, ?) = 0", (last, SEP)).fetchone()[0])

    def pending_archives(self) -> list[str]:
        """Outermost archives with pending members, in registration order."""
        return [r[0] for r in self.conn.execute(
            "SELECT substr(path, 1, instr(path, ?) - 1) AS outer, min(id) FROM files WHERE "
            "status = 'pending' AND instr(path, ?) > 0 GROUP BY outer ORDER BY min(id)",
            (SEP, SEP))]

    def pending_under(self, outer: str) -> list[tuple[str, int]]:
        """(path, size as listed or 0) of the pending members of one outermost archive (a
        range on the path index)."""
        lo = outer + SEP
        hi = lo[:-1] + chr(ord(lo[-1]) + 1)
        return [(r[0], int(r[1] or 0)) for r in self.conn.execute(
            "SELECT path, size FROM files WHERE path >= ? AND path < ? AND status = 'pending'",
            (lo, hi))]

    def record(self, results: Iterable[dict[str, Any]],
               thumbs: Iterable[tuple[str, bytes]] = (),
               keyframes: Iterable[tuple[str, int, float, bytes]] = ()) -> None:
        """Store finished files (dicts keyed by FILE_COLUMNS, 'path' required) atomically,
        with thumbnails (sha256, jpeg) and videos' keyframes (sha256, n, seconds, jpeg).

        What the listing recorded (container, mtime, flags) stays unless a result names it.
        """
        cols = [c for c in FILE_COLUMNS if c != "path"]
        rows = []
        for r in results:
            r = dict(r)
            for key in ("exif", "pdq_dihedral", "flags", "pdq_derived"):
                if isinstance(r.get(key), dict | list):
                    r[key] = json.dumps(r[key], ensure_ascii=False, sort_keys=True)
            rows.append((*(r.get(c) for c in cols), r["path"]))
        sets = ", ".join(f"{c} = coalesce(?, {c})" if c in _LISTED else f"{c} = ?"
                         for c in cols)
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        cur.executemany(f"UPDATE files SET {sets} WHERE path = ?", rows)
        cur.executemany("INSERT OR IGNORE INTO thumbs(sha256, jpeg) VALUES (?, ?)", list(thumbs))
        cur.executemany("INSERT OR IGNORE INTO keyframes(sha256, n, seconds, jpeg) VALUES "
                        "(?, ?, ?, ?)", list(keyframes))
        cur.execute("COMMIT")

    def replace_matches(self, rows: Iterable[MatchRow]) -> None:
        """All matches, replaced in one transaction. ``rows`` may be a generator that reads
        this database (the scan's matching does): it is consumed a chunk at a time."""
        self._write_matches(rows, replace=True)

    def clear_matches(self) -> None:
        """Forget every match (a run that matches as it hashes starts here)."""
        self.conn.execute("DELETE FROM matches")

    def add_matches(self, rows: Iterable[MatchRow]) -> None:
        """Add matches in one transaction, keeping those already there."""
        self._write_matches(rows, replace=False)

    def _write_matches(self, rows: Iterable[MatchRow], replace: bool) -> None:
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            if replace:
                cur.execute("DELETE FROM matches")
            it = iter(rows)
            while chunk := list(islice(it, 1000)):
                cur.executemany(
                    "INSERT OR REPLACE INTO matches(sha256, bank, agency, entry_id, signal_type,"
                    " signals, variant, distance, category_scheme, category, series,"
                    " victim_status, tags, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(m.sha256, m.bank, m.agency, m.entry_id, m.signal_type,
                      json.dumps(m.signals), m.variant, m.distance, m.category_scheme,
                      m.category, m.series, m.victim_status, json.dumps(m.tags),
                      json.dumps(m.detail) if m.detail else None) for m in chunk])
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def claim(self, shas: Iterable[str]) -> list[str]:
        """Those of ``shas`` not claimed before on this connection, now claimed (each once,
        in the order given): how a run matching items as they are hashed handles each item
        once, without holding every SHA-256 in memory (a temporary table does)."""
        self.conn.execute(_CLAIMED)
        fresh = []
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        for sha in shas:
            cur.execute("INSERT OR IGNORE INTO temp.claimed (sha256) VALUES (?)", (sha,))
            if cur.rowcount == 1:
                fresh.append(sha)
        cur.execute("COMMIT")
        return fresh

    def replace_groups(self, groups: Iterable[GroupRow]) -> None:
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        cur.execute("DELETE FROM group_members")
        cur.execute("DELETE FROM groups")
        for g in groups:
            cur.execute("INSERT INTO groups(id, rank, size, score, device, summary) "
                        "VALUES (?,?,?,?,?,?)",
                        (g.id, g.rank, g.size, g.score, g.device, json.dumps(g.summary)))
            cur.executemany("INSERT INTO group_members(group_id, sha256, distance) VALUES (?,?,?)",
                            [(g.id, s, d) for s, d in g.members])
        cur.execute("COMMIT")

    def replace_groups_ranked(self, described: Iterable[tuple[float, GroupRow]]) -> None:
        """Groups (score, row) written as they come and ranked at the end, highest score
        first, ties by the first member's SHA-256 (``grouping.rank_key``): the sort keys
        wait in a temporary table, so no group is held in memory."""
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            cur.execute("DELETE FROM group_members")
            cur.execute("DELETE FROM groups")
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS group_keys "
                        "(n INTEGER PRIMARY KEY, score REAL, first TEXT)")
            cur.execute("DELETE FROM group_keys")
            for n, (score, g) in enumerate(described, start=1):
                cur.execute("INSERT INTO groups(id, rank, size, score, device, summary) "
                            "VALUES (?,?,?,?,?,?)",
                            (-n, 0, g.size, g.score, g.device, json.dumps(g.summary)))
                cur.executemany("INSERT INTO group_members(group_id, sha256, distance) "
                                "VALUES (?,?,?)", [(-n, sha, d) for sha, d in g.members])
                cur.execute("INSERT INTO group_keys VALUES (?,?,?)", (n, score, g.members[0][0]))
            ranked = self.conn.execute("SELECT n FROM group_keys ORDER BY score DESC, first")
            for rank, (n,) in enumerate(ranked, start=1):
                cur.execute("UPDATE groups SET id = ?, rank = ? WHERE id = ?", (rank, rank, -n))
                cur.execute("UPDATE group_members SET group_id = ? WHERE group_id = ?",
                            (rank, -n))
            cur.execute("DELETE FROM group_keys")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    # ---- reading (reports) ---------------------------------------------------------------

    def _file(self, row: tuple[Any, ...]) -> FileRow:
        d = dict(zip(("id", *FILE_COLUMNS), row, strict=True))
        d["exif"] = json.loads(d["exif"]) if d["exif"] else {}
        d["pdq_dihedral"] = json.loads(d["pdq_dihedral"]) if d["pdq_dihedral"] else None
        d["flags"] = json.loads(d["flags"]) if d["flags"] else []
        d["pdq_derived"] = json.loads(d["pdq_derived"]) if d["pdq_derived"] else None
        return FileRow(**d)

    def files(self, status: str | None = None) -> Iterator[FileRow]:
        """Every file in input order (optionally only one status)."""
        q = f"SELECT id, {', '.join(FILE_COLUMNS)} FROM files"
        args: tuple[Any, ...] = ()
        if status is not None:
            q += " WHERE status = ?"
            args = (status,)
        for row in self.conn.execute(q + " ORDER BY id", args):
            yield self._file(row)

    def item_count(self) -> int:
        """Distinct items (SHA-256s) of the files hashed without error."""
        return int(self.conn.execute(
            "SELECT count(DISTINCT sha256) FROM files WHERE status = 'done' AND sha256 IS NOT "
            "NULL").fetchone()[0])

    def match_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM matches").fetchone()[0])

    def distance_counts(self) -> Counter[int]:
        """How many matches have each distance (the report's chart, without the rows)."""
        return Counter(dict(self.conn.execute(
            "SELECT distance, count(*) FROM matches GROUP BY distance").fetchall()))

    def capture_times(self, chunk: int = 5000) -> Iterator[str]:
        """Each item's raw EXIF ``datetime_original`` (from its first file, as
        ``iter_items`` takes it), where it is a string: the report's timeline without
        building every item (equal to it: tests/triage/test_scan_stream.py)."""
        cur = self.conn.execute(
            "SELECT CASE WHEN json_type(exif, '$.datetime_original') = 'text' "
            "THEN json_extract(exif, '$.datetime_original') END, min(id) FROM files "
            "WHERE status = 'done' AND sha256 IS NOT NULL GROUP BY sha256")
        while rows := cur.fetchmany(chunk):
            yield from (r[0] for r in rows if r[0] is not None)

    def matches(self, limit: int | None = None, shas: Iterable[str] | None = None,
                span: Span | None = None) -> list[MatchRow]:
        """Matches, closest first: every one, the first ``limit``, those of ``shas``, or
        those of the files in ``span``."""
        where, args = "", list[object]()
        if shas is not None:
            args = list(shas)
            where = f" WHERE sha256 IN ({', '.join('?' * len(args))})"
        elif span is not None:
            args = [*span]
            where = " WHERE sha256 IN (SELECT sha256 FROM files WHERE id >= ? AND id < ?)"
        q = ("SELECT sha256, bank, agency, entry_id, signal_type, signals, variant, distance,"
             " category_scheme, category, series, victim_status, tags, detail FROM matches"
             f"{where} ORDER BY distance, bank, entry_id, sha256")
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        out = []
        for r in self.conn.execute(q, args):
            out.append(MatchRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7],
                                r[8], r[9], r[10], r[11], json.loads(r[12]),
                                json.loads(r[13]) if r[13] else None))
        return out

    def items(self) -> list[ItemRow]:
        """Identical files merged: one item per SHA-256, in order of first appearance."""
        by_sha: dict[str, list[FileRow]] = {}
        for f in self.files("done"):
            if f.sha256:
                by_sha.setdefault(f.sha256, []).append(f)
        leads: dict[str, list[MatchRow]] = {}
        for m in self.matches():
            leads.setdefault(m.sha256, []).append(m)
        out = []
        for sha, fs in by_sha.items():
            first = fs[0]
            out.append(ItemRow(sha, [f.path for f in fs], first.kind, first.format, first.size,
                               first.pdq, first.pdq_quality, first.exif, leads.get(sha, []),
                               first.md5, first.sha1, first.device, first.pdq_dihedral,
                               first.vpdq))
        return out

    def files_with_first(self, span: Span | None = None
                         ) -> Iterator[tuple[FileRow, str | None]]:
        """Every file (or those in ``span``) in input order, with the path of the first
        done file (by id, up to this one) of the same SHA-256: duplicates named without
        holding every digest."""
        cols = ", ".join(f"f.{c}" for c in ("id", *FILE_COLUMNS))
        where = "" if span is None else " WHERE f.id >= ? AND f.id < ?"
        for row in self.conn.execute(
                f"SELECT {cols}, (SELECT g.path FROM files g WHERE g.sha256 = f.sha256 AND "
                f"g.status = 'done' AND g.id <= f.id ORDER BY g.id LIMIT 1) FROM files f{where}"
                " ORDER BY f.id", span or ()):
            yield self._file(row[:-1]), row[-1]

    def first_files(self, span: Span | None = None) -> Iterator[tuple[FileRow, list[str]]]:
        """Each item's first file and every path of the item, in order of first appearance,
        streamed (one statement; the paths come from the SHA-256 index). With ``span``, the
        items whose first file is in it: each file there is checked against the index for
        an earlier one, so a span costs its own size, not the whole scan's."""
        cols = ", ".join(f"f.{c}" for c in ("id", *FILE_COLUMNS))
        paths = ("(SELECT json_group_array(path) FROM (SELECT g.path FROM files g WHERE "
                 "g.sha256 = f.sha256 AND g.status = 'done' ORDER BY g.id))")
        if span is None:
            q = (f"SELECT {cols}, {paths} FROM files f WHERE f.id IN (SELECT min(id) FROM "
                 "files WHERE status = 'done' AND sha256 IS NOT NULL GROUP BY sha256) "
                 "ORDER BY f.id")
        else:
            q = (f"SELECT {cols}, {paths} FROM files f WHERE f.id >= ? AND f.id < ? AND "
                 "f.status = 'done' AND f.sha256 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                 "files e WHERE e.status = 'done' AND e.sha256 = f.sha256 AND e.id < f.id) "
                 "ORDER BY f.id")
        for row in self.conn.execute(q, span or ()):
            yield self._file(row[:-1]), json.loads(row[-1])

    def id_bounds(self) -> Span:
        """(lowest file id, highest + 1): the span of every file; (1, 1) when there is none."""
        lo, hi = self.conn.execute("SELECT min(id), max(id) FROM files").fetchone()
        return (1, 1) if lo is None else (int(lo), int(hi) + 1)

    def done_with_digest(self) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM files WHERE status = 'done' AND sha256 IS NOT NULL"
        ).fetchone()[0])

    def items_for(self, shas: Iterable[str], leads: bool = True) -> dict[str, ItemRow]:
        """The items named, with every path and (unless ``leads`` is false) lead: what
        ``items()`` gives for them."""
        out: dict[str, ItemRow] = {}
        names = sorted(set(shas))
        for k in range(0, len(names), 500):
            part = names[k:k + 500]
            marks = ", ".join("?" * len(part))
            files: dict[str, list[FileRow]] = {}
            for row in self.conn.execute(
                    f"SELECT id, {', '.join(FILE_COLUMNS)} FROM files WHERE {_BY_SHA_DONE} "
                    f"AND sha256 IN ({marks}) ORDER BY id", part):
                f = self._file(row)
                files.setdefault(f.sha256 or "", []).append(f)
            found: dict[str, list[MatchRow]] = {}
            for m in self.matches(shas=part) if leads else ():
                found.setdefault(m.sha256, []).append(m)
            for sha, fs in files.items():
                item = self._item(fs[0], [f.path for f in fs])
                item.matches.extend(found.get(sha, []))
                out[sha] = item
        return out

    def signal_rows(self, shas: Iterable[str]) -> list[SignalRow]:
        """The items named (those recorded as done), by SHA-256, as matching reads them:
        each one's first file, as in ``items_for``."""
        out: list[SignalRow] = []
        names = sorted(set(shas))
        for k in range(0, len(names), 500):
            part = names[k:k + 500]
            for row in self.conn.execute(
                    f"SELECT {_SIGNAL_COLUMNS} FROM files WHERE id IN (SELECT min(id) FROM files"
                    f" WHERE {_BY_SHA_DONE} AND sha256 IN ({', '.join('?' * len(part))})"
                    " GROUP BY sha256) ORDER BY sha256", part):
                sha, kind, fmt, size, md5, sha1, pdq, q, dihedral, vpdq, derived, feats = row
                out.append(SignalRow(sha, kind, fmt, size, md5, sha1, pdq, q,
                                     json.loads(dihedral) if dihedral else None, vpdq,
                                     json.loads(derived) if derived else None, feats))
        return out

    def iter_items(self, chunk: int = 5000, kinds: tuple[str, ...] | None = None,
                   unclaimed: bool = False) -> Iterator[list[ItemRow]]:
        """Items in chunks (by SHA-256 order), without their matches: flat memory for scans
        of millions of files, where ``items()`` would hold every row at once. With
        ``unclaimed``, only items this connection has not ``claim``ed."""
        q = (f"SELECT id, {', '.join(FILE_COLUMNS)} FROM files WHERE status = 'done' AND "
             "sha256 IS NOT NULL")
        args: tuple[Any, ...] = ()
        if kinds:
            q += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            args = kinds
        if unclaimed:
            self.conn.execute(_CLAIMED)
            q += " AND sha256 NOT IN (SELECT sha256 FROM temp.claimed)"
        cur = self.conn.execute(q + " ORDER BY sha256, id", args)
        batch: list[ItemRow] = []
        first: FileRow | None = None
        paths: list[str] = []
        while True:
            rows = cur.fetchmany(chunk)
            for row in rows:
                f = self._file(row)
                if first is not None and f.sha256 != first.sha256:
                    batch.append(self._item(first, paths))
                    first, paths = None, []
                if first is None:
                    first = f
                paths.append(f.path)
            if len(batch) >= chunk or (not rows and batch):
                yield batch
                batch = []
            if not rows:
                break
        if first is not None:
            yield [self._item(first, paths)]

    @staticmethod
    def _item(first: FileRow, paths: list[str]) -> ItemRow:
        return ItemRow(first.sha256 or "", paths, first.kind, first.format, first.size,
                       first.pdq, first.pdq_quality, first.exif, [], first.md5, first.sha1,
                       first.device, first.pdq_dihedral, first.vpdq, first.pdq_derived,
                       first.pdq_features)

    _FIRST_UNKNOWN = ("FROM files WHERE id IN (SELECT min(id) FROM files WHERE status = 'done'"
                      " AND sha256 IS NOT NULL AND kind IN ('image', 'video') GROUP BY sha256)"
                      " AND sha256 NOT IN (SELECT sha256 FROM matches)")

    def unknown_signals(self) -> Iterator[tuple[str, str | None, int, str | None, str | None]]:
        """(sha256, pdq, quality, device, vpdq) of every unmatched image or video item, its
        first file's, in SHA-256 order: what grouping holds per item, streamed."""
        for sha, pdq, q, device, vpdq in self.conn.execute(
                f"SELECT sha256, pdq, pdq_quality, device, vpdq {self._FIRST_UNKNOWN} "
                "ORDER BY sha256"):
            yield sha, pdq, q or 0, device, vpdq

    def stage_unknown(self) -> int:
        """Copy ``unknown_signals`` into a temporary table numbered by position (0..n-1),
        so grouping can read codes and SHA-256 back by position instead of holding them
        (64 bytes per item at a million items). Returns how many items are staged."""
        self.conn.execute("DROP TABLE IF EXISTS temp.unknown_staged")
        self.conn.execute(
            "CREATE TEMP TABLE unknown_staged (pos INTEGER PRIMARY KEY, sha256 TEXT NOT NULL,"
            " pdq TEXT, quality INTEGER NOT NULL, device TEXT, vpdq TEXT)")
        self.conn.execute(
            "INSERT INTO unknown_staged (pos, sha256, pdq, quality, device, vpdq) SELECT"
            " row_number() OVER (ORDER BY sha256) - 1, sha256, pdq, coalesce(pdq_quality, 0),"
            f" device, vpdq {self._FIRST_UNKNOWN}")
        return int(self.conn.execute("SELECT count(*) FROM unknown_staged").fetchone()[0])

    def staged_signals(self) -> Iterator[tuple[str | None, int, str | None, str | None]]:
        """(pdq, quality, device, vpdq) of each staged item, in position order."""
        yield from self.conn.execute(
            "SELECT pdq, quality, device, vpdq FROM unknown_staged ORDER BY pos")

    def staged_codes(self, first: int, last: int, min_quality: int) -> bytes:
        """The usable PDQ codes (as ``Gathered`` decides: present, quality at least
        ``min_quality``) of the staged items at positions ``first..last``, 32 bytes each."""
        rows = self.conn.execute(
            "SELECT pdq FROM unknown_staged WHERE pos BETWEEN ? AND ? AND pdq IS NOT NULL"
            " AND pdq != '' AND quality >= ? ORDER BY pos", (first, last, min_quality))
        return bytes.fromhex("".join(r[0] for r in rows))

    def staged_shas(self, positions: list[int]) -> list[str]:
        """SHA-256 of the staged items at ``positions``, in that order."""
        found: dict[int, str] = {}
        for k in range(0, len(positions), 500):
            part = positions[k:k + 500]
            marks = ", ".join("?" * len(part))
            found.update(self.conn.execute(
                f"SELECT pos, sha256 FROM unknown_staged WHERE pos IN ({marks})", part))
        return [found[p] for p in positions]

    def unstage_unknown(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS temp.unknown_staged")

    def unknown_details(self, shas: list[str]) -> dict[str, FileRow]:
        """The first file of each item named: grouping reads full records (EXIF, format)
        of group members only."""
        out: dict[str, FileRow] = {}
        for k in range(0, len(shas), 500):
            part = shas[k:k + 500]
            q = (f"SELECT id, {', '.join(FILE_COLUMNS)} FROM files WHERE id IN (SELECT min(id)"
                 f" FROM files WHERE {_BY_SHA_DONE} AND kind IN ('image', 'video') AND sha256 IN"
                 f" ({', '.join('?' * len(part))}) GROUP BY sha256)")
            for row in self.conn.execute(q, part):
                f = self._file(row)
                out[f.sha256 or ""] = f
        return out

    def matched_items(self) -> set[str]:
        """SHA-256 of every item with at least one match."""
        return {r[0] for r in self.conn.execute("SELECT DISTINCT sha256 FROM matches")}

    def groups(self, limit: int | None = None) -> list[GroupRow]:
        """Groups in rank order: every one, or the first ``limit`` (ranks are 1..n)."""
        top = "" if limit is None else f" WHERE rank <= {int(limit)}"
        members: dict[int, list[tuple[str, int]]] = {}
        for gid, sha, d in self.conn.execute(
                "SELECT m.group_id, m.sha256, m.distance FROM group_members m JOIN groups g ON "
                f"g.id = m.group_id{top} ORDER BY m.group_id, m.distance, m.sha256"):
            members.setdefault(gid, []).append((sha, d))
        return [GroupRow(gid, rank, size, score, device, json.loads(summary), members.get(gid, []))
                for gid, rank, size, score, device, summary in self.conn.execute(
                    f"SELECT id, rank, size, score, device, summary FROM groups{top} "
                    "ORDER BY rank")]

    def group_totals(self) -> tuple[int, int]:
        """(groups, items in groups)."""
        g, m = self.conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM groups").fetchone()
        return int(g), int(m)

    def thumbnail(self, sha256: str) -> bytes | None:
        row = self.conn.execute("SELECT jpeg FROM thumbs WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else bytes(row[0])

    def keyframes(self, sha256: str) -> list[tuple[float, bytes]]:
        """A video's keyframes (seconds, jpeg) in time order; none for anything else, and
        for videos of scans made before keyframes were kept."""
        return [(float(t), bytes(j)) for t, j in self.conn.execute(
            "SELECT seconds, jpeg FROM keyframes WHERE sha256 = ? ORDER BY n", (sha256,))]

    def summary(self) -> Summary:
        one = self.conn.execute
        files = one("SELECT count(*) FROM files").fetchone()[0]
        status = dict(one("SELECT status, count(*) FROM files GROUP BY status").fetchall())
        items = one("SELECT count(DISTINCT sha256) FROM files WHERE status='done' AND sha256 "
                    "IS NOT NULL").fetchone()[0]
        dup_files = one("SELECT count(*) FROM files WHERE status='done' AND sha256 IS NOT NULL"
                        ).fetchone()[0]
        known = one("SELECT count(DISTINCT sha256) FROM matches").fetchone()[0]
        unknown_images = one(
            "SELECT count(DISTINCT sha256) FROM files WHERE status='done' AND kind='image' AND "
            "sha256 NOT IN (SELECT sha256 FROM matches)").fetchone()[0]
        by_kind = dict(one("SELECT coalesce(kind, 'unknown'), count(*) FROM files WHERE "
                           "status='done' GROUP BY kind").fetchall())
        by_cat: dict[str, int] = {}
        for scheme, cat, n in one(
                "SELECT category_scheme, category, count(DISTINCT sha256) FROM matches "
                "GROUP BY category_scheme, category"):
            key = f"{scheme}:{cat}" if scheme else "uncategorised"
            by_cat[key] = by_cat.get(key, 0) + n
        errors = dict(one("SELECT error_code, count(*) FROM files WHERE status='error' "
                          "GROUP BY error_code").fetchall())
        groups = one("SELECT count(*) FROM groups").fetchone()[0]
        return Summary(files=files, done=status.get("done", 0), errors=status.get("error", 0),
                       pending=status.get("pending", 0), items=items,
                       duplicates=dup_files - items, known_items=known,
                       unknown_images=unknown_images, groups=groups, by_kind=by_kind,
                       known_by_category=by_cat, errors_by_code=errors, meta=self.meta())
