"""Review decisions in the scan's own ``scan.db``: durable the moment they are made.

Why in ``scan.db``: the decisions belong to the seizure (they are what an examiner found in
it) and travel with its folder; the report, the exports and the review read one file.

Why crash-safe: every action (a category for one item or a whole group, a series link, an
undo) is one transaction, committed with ``synchronous=FULL`` before the server answers,
so a reviewer's decision survives ``kill -9`` of the server and a power cut after the
page showed it as done. An action is never edited: undo marks its rows no longer live, so
the record of what was decided, by whom and when, stays.

Tables (added beside the scan's own; ``review_schema_version`` in ``meta``):

``review_actions``        one row per reviewer action (decide, series, undo), with when
``review_decisions``      one row per item decided: kind (category | not_relevant), scheme,
                          category, round (1; 2 = second opinion; 3 = settles a
                          disagreement), live (0 once undone)
``review_series_links``   an item put in a series (the latest live link wins)
``review_series``         series created during this review (new names)
``meta.review_scan_id``   a random id naming this scan in the node's exposure ledger
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REVIEW_SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS review_actions (
    id INTEGER PRIMARY KEY,
    reviewer TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- decide | series
    at REAL NOT NULL,
    detail TEXT NOT NULL,               -- JSON: what was done (no hash values)
    undone_at REAL
);
CREATE TABLE IF NOT EXISTS review_decisions (
    id INTEGER PRIMARY KEY,
    action_id INTEGER NOT NULL REFERENCES review_actions(id),
    sha256 TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    round INTEGER NOT NULL DEFAULT 1,
    kind TEXT NOT NULL,                 -- category | not_relevant
    scheme TEXT, category TEXT,
    live INTEGER NOT NULL DEFAULT 1,
    at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_review_decision_live
    ON review_decisions(sha256, round) WHERE live = 1;
CREATE INDEX IF NOT EXISTS ix_review_decision_action ON review_decisions(action_id);
CREATE TABLE IF NOT EXISTS review_series_links (
    id INTEGER PRIMARY KEY,
    action_id INTEGER NOT NULL REFERENCES review_actions(id),
    sha256 TEXT NOT NULL,
    series TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 1,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_review_series_item ON review_series_links(sha256);
CREATE TABLE IF NOT EXISTS review_series (
    name TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    action_id INTEGER NOT NULL
);
"""

KINDS = ("category", "not_relevant")


class ReviewStoreError(Exception):
    """A review action that cannot be recorded as asked (the message says why)."""


class AlreadyDecided(ReviewStoreError):
    """An item already has a live decision in this round: undo it first."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The live decision on one item."""

    sha256: str
    reviewer: str
    kind: str
    scheme: str | None
    category: str | None
    at: float


@dataclass(frozen=True, slots=True)
class Action:
    """One reviewer action, as the page describes it after it is done."""

    id: int
    reviewer: str
    kind: str
    at: float
    detail: dict[str, Any]
    undone_at: float | None


class ReviewStore:
    """The review tables of one ``scan.db``; safe to use from the server's threads.

    One connection (SQLite serialises writers anyway) behind a lock; WAL, so a running
    report or export can read meanwhile.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # every decision reaches the disk before the server answers (see the module)
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        version = self._meta("review_schema_version")
        if version is not None and version != REVIEW_SCHEMA_VERSION:
            raise ReviewStoreError(
                f"{self.path}: review tables are version {version}, this Vigil reads "
                f"{REVIEW_SCHEMA_VERSION}; use the Vigil that reviewed this scan")
        self.conn.executescript(DDL)  # idempotent (IF NOT EXISTS)
        with self.transaction():
            if self._meta("review_schema_version") is None:
                self._set_meta("review_schema_version", REVIEW_SCHEMA_VERSION)
            if self._meta("review_scan_id") is None:
                self._set_meta("review_scan_id", secrets.token_hex(8))
        self.scan_id: str = self._meta("review_scan_id")

    @property
    def lock(self) -> threading.RLock:
        """Held by whoever else reads through ``conn`` (the review queue)."""
        return self._lock

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # ---- plumbing ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the write lock up front, so two
        reviewers deciding the same item meet at the unique index, not in a deadlock)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                          "UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def _action(self, c: sqlite3.Connection, reviewer: str, kind: str,
                detail: dict[str, Any], now: float) -> int:
        cur = c.execute("INSERT INTO review_actions(reviewer, kind, at, detail) "
                        "VALUES (?, ?, ?, ?)", (reviewer, kind, now, json.dumps(detail)))
        assert cur.lastrowid is not None
        return cur.lastrowid

    # ---- writing -----------------------------------------------------------------------

    def decide(self, reviewer: str, shas: Iterable[str], kind: str, scheme: str | None,
               category: str | None, detail: dict[str, Any], round_: int = 1) -> int:
        """Record one decision for each item, all or none; returns the action's id.

        ``kind`` is ``category`` (with a checked scheme and category) or ``not_relevant``.
        An item that already has a live decision in this round is refused
        (``AlreadyDecided``): decisions are never overwritten, only undone.
        """
        if kind not in KINDS:
            raise ReviewStoreError(f"decision kind must be one of {', '.join(KINDS)}")
        items = list(dict.fromkeys(shas))
        if not items:
            raise ReviewStoreError("no items to decide (all of them are decided already)")
        now = time.time()
        with self.transaction() as c:
            aid = self._action(c, reviewer, "decide", {**detail, "items": len(items)}, now)
            try:
                c.executemany(
                    "INSERT INTO review_decisions(action_id, sha256, reviewer, round, kind, "
                    "scheme, category, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(aid, s, reviewer, round_, kind, scheme, category, now) for s in items])
            except sqlite3.IntegrityError:
                raise AlreadyDecided("already decided (by this or another reviewer); undo "
                                     "that decision first") from None
        return aid

    def link_series(self, reviewer: str, shas: Iterable[str], series: str, new: bool,
                    detail: dict[str, Any]) -> int:
        """Put items in a series (``new``: a series this review creates); one action."""
        items = list(dict.fromkeys(shas))
        if not items:
            raise ReviewStoreError("no items to put in a series")
        now = time.time()
        with self.transaction() as c:
            aid = self._action(c, reviewer, "series",
                               {**detail, "series": series, "new": new, "items": len(items)},
                               now)
            if new:
                c.execute("INSERT OR IGNORE INTO review_series(name, created_by, created_at, "
                          "action_id) VALUES (?, ?, ?, ?)", (series, reviewer, now, aid))
            c.executemany("INSERT INTO review_series_links(action_id, sha256, series, at) "
                          "VALUES (?, ?, ?, ?)", [(aid, s, series, now) for s in items])
        return aid

    def undo(self, reviewer: str) -> tuple[Action, list[str]] | None:
        """Undo this reviewer's latest action that is not undone yet; returns it and the
        items it touched, or None when there is nothing to undo."""
        now = time.time()
        with self.transaction() as c:
            row = c.execute("SELECT id, reviewer, kind, at, detail, undone_at FROM "
                            "review_actions WHERE reviewer = ? AND undone_at IS NULL "
                            "ORDER BY id DESC LIMIT 1", (reviewer,)).fetchone()
            if row is None:
                return None
            aid = row[0]
            table = "review_decisions" if row[2] == "decide" else "review_series_links"
            shas = [r[0] for r in c.execute(
                f"SELECT sha256 FROM {table} WHERE action_id = ? ORDER BY id", (aid,))]
            c.execute(f"UPDATE {table} SET live = 0 WHERE action_id = ?", (aid,))
            c.execute("DELETE FROM review_series WHERE action_id = ?", (aid,))
            c.execute("UPDATE review_actions SET undone_at = ? WHERE id = ?", (now, aid))
        return Action(row[0], row[1], row[2], row[3], json.loads(row[4]), now), shas

    # ---- reading -----------------------------------------------------------------------

    def action(self, action_id: int) -> Action | None:
        with self._lock:
            row = self.conn.execute("SELECT id, reviewer, kind, at, detail, undone_at FROM "
                                    "review_actions WHERE id = ?", (action_id,)).fetchone()
        return None if row is None else Action(row[0], row[1], row[2], row[3],
                                               json.loads(row[4]), row[5])

    def decided(self, round_: int = 1) -> set[str]:
        """Items with a live decision in ``round_``."""
        with self._lock:
            return {r[0] for r in self.conn.execute(
                "SELECT sha256 FROM review_decisions WHERE live = 1 AND round = ?",
                (round_,))}

    def is_decided(self, sha256: str, round_: int = 1) -> bool:
        with self._lock:
            return self.conn.execute(
                "SELECT 1 FROM review_decisions WHERE live = 1 AND round = ? AND sha256 = ?",
                (round_, sha256)).fetchone() is not None

    def decisions(self, round_: int = 1) -> dict[str, Decision]:
        """Every live decision of ``round_`` by item."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT sha256, reviewer, kind, scheme, category, at FROM review_decisions "
                "WHERE live = 1 AND round = ? ORDER BY id", (round_,)).fetchall()
        return {r[0]: Decision(*r) for r in rows}

    def series_of(self) -> dict[str, str]:
        """Each item's series (its latest live link)."""
        with self._lock:
            rows = self.conn.execute("SELECT sha256, series FROM review_series_links "
                                     "WHERE live = 1 ORDER BY id").fetchall()
        return dict(rows)

    def new_series(self) -> list[str]:
        """Series created during this review, oldest first."""
        with self._lock:
            return [r[0] for r in self.conn.execute(
                "SELECT name FROM review_series ORDER BY created_at, name")]

    def last_category(self, reviewer: str, shas: Iterable[str]) -> tuple[str, str] | None:
        """The category this reviewer gave most recently to one of ``shas`` (what "apply
        to group" applies), or None."""
        items = list(shas)
        if not items:
            return None
        marks = ",".join("?" for _ in items)
        with self._lock:
            row = self.conn.execute(
                f"SELECT scheme, category FROM review_decisions WHERE live = 1 AND "
                f"reviewer = ? AND kind = 'category' AND sha256 IN ({marks}) "
                "ORDER BY id DESC LIMIT 1", (reviewer, *items)).fetchone()
        return None if row is None else (row[0], row[1])

    def final_decisions(self) -> dict[str, Decision]:
        """What an export banks: each item's first decision, or the decision that settled
        a disagreement about it (round 3) where there is one."""
        out = self.decisions(1)
        out.update(self.decisions(3))
        return out

    def counts(self, round_: int = 1) -> dict[str, int]:
        """Live decisions per category key (``scheme:value`` or ``not_relevant``)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT kind, scheme, category, count(*) FROM review_decisions WHERE live = 1 "
                "AND round = ? GROUP BY kind, scheme, category", (round_,)).fetchall()
        return {(f"{s}:{c}" if k == "category" else k): n for k, s, c, n in rows}

    def thumbnail(self, sha256: str) -> bytes | None:
        """The scan's stored (clear, small) thumbnail of an item: only ever passed on
        through ``vigil.review.derive``."""
        with self._lock:
            row = self.conn.execute("SELECT jpeg FROM thumbs WHERE sha256 = ?",
                                    (sha256,)).fetchone()
        return None if row is None else bytes(row[0])

    def keyframe(self, sha256: str, n: int) -> bytes | None:
        """A video's ``n``-th keyframe (clear, small, greyscale; the scan's
        ``keyframes``): like ``thumbnail``, only passed on through ``vigil.review.derive``."""
        with self._lock:
            row = self.conn.execute("SELECT jpeg FROM keyframes WHERE sha256 = ? AND n = ?",
                                    (sha256, n)).fetchone()
        return None if row is None else bytes(row[0])
