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
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from vigil.audit_head import HeadHint

if TYPE_CHECKING:
    from vigil.audit import AuditEntry

Chain = Callable[[list[dict[str, Any]], int, str], "list[AuditEntry]"]
Quote = Callable[[bytes], bytes]

_LOCK_HEAD = ("BEGIN; UPDATE audit_head SET last_id = last_id WHERE id = 1 "
              "RETURNING last_id, last_hash")
_COLUMNS = b"id, at, agency, actor, action, outcome, target, remote, detail, prev_hash, hash"


def rows(quote: Quote, out: list[AuditEntry]) -> list[bytes]:
    """Each record as a ``VALUES`` row of SQL literals.

    Every text value is quoted by libpq (``PQescapeLiteral``, which knows the
    connection's encoding and string settings); ids are ``int`` by construction. Why not
    psycopg's client-side binding: it re-parses the statement for every batch size,
    about a third of the append's CPU (py-spy, bench/RESULTS.md)."""
    def lit(v: str | None) -> bytes:
        return b"NULL" if v is None else quote(v.encode())

    return [b"(%d, %s::timestamptz, %s, %s, %s, %s, %s, %s, %s::json, %s, %s)" % (
        int(e.id), quote(e.at.isoformat().encode()), lit(e.agency), lit(e.actor),
        lit(e.action), lit(e.outcome), lit(e.target), lit(e.remote),
        quote(json.dumps(e.detail).encode()), lit(e.prev_hash), lit(e.hash)) for e in out]


def statements(quote: Quote, out: list[AuditEntry]) -> bytes:
    """The rows' insert, the head's update and ``COMMIT`` as one statement list (the
    second trip of an append that locked the head row first)."""
    last = out[-1]
    return b"".join([b"INSERT INTO audit_log (", _COLUMNS, b") VALUES ",
                     b", ".join(rows(quote, out)),
                     b"; UPDATE audit_head SET last_id = %d, last_hash = %s WHERE id = 1; COMMIT"
                     % (int(last.id), quote(last.hash.encode()))])


def conditional(quote: Quote, out: list[AuditEntry], head: tuple[int, str]) -> bytes:
    """One statement that moves the head from ``head`` to the last record and inserts the
    records, or, if the head is not at ``head`` any more, does nothing at all: the rows
    are joined with the head update's result, which is one row or none."""
    last = out[-1]
    return b"".join([
        b"WITH head AS (UPDATE audit_head SET last_id = %d, last_hash = %s "
        b"WHERE id = 1 AND last_id = %d AND last_hash = %s RETURNING 1) "
        % (int(last.id), quote(last.hash.encode()), int(head[0]), quote(head[1].encode())),
        b"INSERT INTO audit_log (", _COLUMNS, b") SELECT v.* FROM (VALUES ",
        b", ".join(rows(quote, out)), b") AS v (", _COLUMNS, b"), head"])


def _lock_head(pg: Any) -> tuple[int, str] | None:
    with pg.cursor() as cur:
        cur.execute(_LOCK_HEAD)  # no parameters: one simple-protocol round trip
        cur.nextset()
        return cur.fetchone()  # type: ignore[no-any-return]


def _quote(pg: Any) -> Quote:
    from psycopg.pq import Escaping

    return Escaping(pg.pgconn).escape_literal  # type: ignore[no-any-return]


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
                        cur.execute(conditional(_quote(pg), tried, hint))
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
                cur.execute(statements(_quote(pg), out))
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
            fairy.detach()  # never handed back to the pool, even when this thread ends
            pg.autocommit = True  # the transaction is spelled out: BEGIN ... COMMIT
            self.local.conn = pg
        return pg

    def _drop(self, pg: Any) -> None:
        self.local.conn = None
        with contextlib.suppress(Exception):
            pg.close()
