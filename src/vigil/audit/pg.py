"""Audit appends on PostgreSQL through psycopg directly: one round trip, or two.

Why a path of its own: a server appends one record per request, in small group-commit
batches. Through SQLAlchemy each batch cost ~1.1 ms of CPU (statement building, a pool
checkout with its ping, a round trip per statement), as much as the rest of a match
request; then the head row's own round trip was about half of the database's CPU for an
append. Here a batch is, when the head is where this host's last append left it
(``HeadHint``), one statement that inserts the rows only if it moves the head from
exactly there; otherwise ``BEGIN`` and the head row's lock, then the rows, the head and
``COMMIT``. Same rows, same chain, same lock order as ``AuditLog._append_many_core``,
its reference (tests write one chain alternately through both).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from vigil.audit.head import HeadHint
from vigil.audit.records import AuditEntry
from vigil.store.dialects import (
    LOCK_AUDIT_HEAD,
    audit_insert_and_commit,
    audit_insert_if_head,
    libpq_quote,
)

Chain = Callable[[list[dict[str, Any]], int, str], "list[AuditEntry]"]


def _lock_head(pg: Any) -> tuple[int, str] | None:
    with pg.cursor() as cur:
        cur.execute(LOCK_AUDIT_HEAD)  # no parameters: one simple-protocol round trip
        cur.nextset()
        row = cur.fetchone()
        return (int(row[0]), str(row[1])) if row is not None else None


class PgAppender:
    """Appends chained records to one PostgreSQL store, on a connection per thread."""

    def __init__(self, engine: Engine, hint: HeadHint, chain: Chain) -> None:
        self.engine = engine
        self.hint = hint
        self.chain = chain  # records -> entries after (last id, last MAC), with MACs
        self.local = threading.local()
        #: appends that took one round trip (the hinted head was right)
        self.single_trips = 0

    def append(self, recs: list[dict[str, Any]]) -> list[AuditEntry]:
        """Chain and commit ``recs``; one round trip when the hint is right, else two."""
        from psycopg import OperationalError

        with self.hint.locked():
            hint = self.hint.get()
            tried: list[AuditEntry] | None = None
            if hint is not None:
                tried = self.chain(recs, *hint)
                pg = self.connection()
                try:
                    with pg.cursor() as cur:
                        cur.execute(audit_insert_if_head(libpq_quote(pg), tried, hint))
                        done = cur.rowcount == len(tried)
                except OperationalError:  # did it commit? the two-trip path finds out
                    self._drop(pg)
                    done = False
                except BaseException:
                    self._drop(pg)
                    raise
                if done:
                    self.single_trips += 1
                    out = tried
                else:
                    out = self.two_trips(recs, tried)
            else:
                out = self.two_trips(recs, None)
            self.hint.set(out[-1].id, out[-1].hash)
        return out

    def two_trips(self, recs: list[dict[str, Any]],
                  tried: list[AuditEntry] | None) -> list[AuditEntry]:
        """Lock and read the head row, then send the rows, the head and ``COMMIT``.

        ``tried``: the records as a one-trip attempt chained them, if one failed without
        an answer; if the head is found right after them, that attempt did commit."""
        from psycopg import OperationalError

        pg = self.connection()
        try:
            try:
                head = _lock_head(pg)
            except OperationalError:  # a kept connection the server dropped: once more
                self._drop(pg)
                pg = self.connection()
                head = _lock_head(pg)
            if head is None:
                raise RuntimeError("audit_head row missing: the store is not migrated")
            if tried is not None and tuple(head) == (tried[-1].id, tried[-1].hash):
                pg.execute("ROLLBACK")
                return tried
            out = self.chain(recs, *head)
            with pg.cursor() as cur:  # no parameters: the simple protocol, one round trip
                cur.execute(audit_insert_and_commit(libpq_quote(pg), out))
        except BaseException:
            self._drop(pg)  # whatever state it is in, it is not reused
            raise
        return out

    def connection(self) -> Any:
        """This thread's own connection for appends (out of the pool: no checkout, no
        ping per batch), opened on first use and again after any failure."""
        pg = getattr(self.local, "conn", None)
        if pg is None or pg.closed:
            fairy = self.engine.raw_connection()
            pg = fairy.driver_connection
            if pg is None:
                raise RuntimeError("the database driver gave no connection for audit appends")
            fairy.detach()  # never handed back to the pool, even when this thread ends
            pg.autocommit = True  # the transaction is spelled out: BEGIN ... COMMIT
            self.local.conn = pg
        return pg

    def _drop(self, pg: Any) -> None:
        self.local.conn = None
        with contextlib.suppress(Exception):
            pg.close()
