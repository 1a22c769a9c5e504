"""SQL that only one database speaks, in one place: the domain above stays portable.

The banks, the feeds and the audit log each need a few statements that differ between
SQLite and PostgreSQL (locks, id blocks, statistics, the audit log's single-trip
append). They are here, named for what they do, so that a reader of ``vigil.banks`` or
``vigil.audit`` sees the intent and a reviewer of the SQL sees all of it at once. Bulk
inserts (``COPY`` on PostgreSQL) are ``vigil.store.bulk``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

#: pg_advisory_xact_lock key that orders change-log appends ("vigilchg")
CHANGE_LOCK = 0x7669_6769_6C63_6867 & 0x7FFF_FFFF_FFFF_FFFF
#: rows added per engine since its last ANALYZE (PostgreSQL)
_GROWN: dict[int, int] = {}
ANALYZE_MIN_ROWS = 20_000


def is_postgresql(bind: Session | Connection | Engine) -> bool:
    """Whether ``bind`` talks to PostgreSQL (else SQLite, the only other store)."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


# ---- the bank change log ------------------------------------------------------------------

def begin_change_log_write(s: Session, bank_id: int) -> None:
    """Take the locks a write to a bank's change log needs, at the start of its transaction.

    SQLite: its write lock now (the driver only begins a transaction before its first
    write), so the reads that follow see what this transaction writes over, and a
    savepoint of an optimistic batch is never the outermost one (releasing that would
    commit). PostgreSQL: change ids must commit in id order, or an index tailing the log
    could step over a change that commits late, so every writer (every bank) queues on
    one advisory lock; and as every query of a write is an index lookup on tables that
    may grow inside this one transaction (no statistics yet), sequential scans are ruled
    out for it.
    """
    if is_postgresql(s):
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHANGE_LOCK})
        s.execute(text("SET LOCAL enable_seqscan = off"))
    else:
        s.execute(text("UPDATE banks SET last_seq = last_seq WHERE id = :i"), {"i": bank_id})


def reserve_entry_ids(s: Session, n: int) -> list[int]:
    """``n`` ids for new entries, taken before inserting them (so none are read back).

    SQLite: after the largest (the writer holds the write lock, so no one else inserts).
    PostgreSQL: a block of the table's sequence in one statement (the writer holds the
    change-log lock every writer takes; anyone else taking an id inside the block makes
    the insert fail on the primary key, and the caller takes its full path).
    """
    if not is_postgresql(s):
        start = (s.execute(text("SELECT max(id) FROM entries")).scalar() or 0) + 1
        return list(range(start, start + n))
    last = s.execute(text("SELECT setval(pg_get_serial_sequence('entries', 'id'), "
                          "nextval(pg_get_serial_sequence('entries', 'id')) + :n - 1)"),
                     {"n": n}).scalar_one()
    return list(range(last - n + 1, last + 1))


def analyze_if_grown(engine: Engine, added: int) -> None:
    """ANALYZE the bank tables after they grew by a fifth (and at least 20,000 rows).

    PostgreSQL only (SQLite plans these lookups by index anyway). The existence check
    of every write looks entries up by (type, value); on a table that grew in bulk since
    PostgreSQL last sampled it, the planner has no idea and walked every entry of the
    type: 0.35-0.6 s per lookup of 900 values at 1M entries, against 0.02 s after
    ANALYZE (measured by bench/federation.py). Autovacuum may be off, or simply behind a
    bulk import or a first mirror sync; this does not wait for it.
    """
    if not added or not is_postgresql(engine):
        return
    key = id(engine)
    grown = _GROWN.get(key, 0) + added
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT reltuples FROM pg_class "
                                 "WHERE oid = to_regclass('entries')")).scalar() or 0
        if grown < max(ANALYZE_MIN_ROWS, 0.2 * max(0.0, float(rows))):
            _GROWN[key] = grown
            return
        conn.execute(text("ANALYZE entries"))
        conn.execute(text("ANALYZE changes"))
        conn.commit()
    _GROWN[key] = 0


# ---- feeds --------------------------------------------------------------------------------

def lock_feed_row(s: Session, feed_id: int) -> bool:
    """Lock one feed row for the transaction (PostgreSQL); True if a lock was taken and the
    caller must re-read the row. SQLite's single writer needs none."""
    if not is_postgresql(s):
        return False
    s.execute(text("SELECT 1 FROM feeds WHERE id = :i FOR UPDATE"), {"i": feed_id})
    return True


# ---- the audit log's driver path (PostgreSQL, psycopg) -------------------------------------

class AuditRow(Protocol):
    """What an audit record must carry to be written (``vigil.audit.AuditEntry`` does)."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def agency(self) -> str | None: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def target(self) -> str | None: ...
    @property
    def remote(self) -> str | None: ...
    @property
    def detail(self) -> dict[str, Any]: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


Quote = Callable[[bytes], bytes]

LOCK_AUDIT_HEAD = ("BEGIN; UPDATE audit_head SET last_id = last_id WHERE id = 1 "
                   "RETURNING last_id, last_hash")
_AUDIT_COLUMNS = b"id, at, agency, actor, action, outcome, target, remote, detail, prev_hash, hash"


def audit_values(quote: Quote, out: Sequence[AuditRow]) -> list[bytes]:
    """Each record as a ``VALUES`` row of SQL literals.

    Every text value is quoted by libpq (``PQescapeLiteral``, which knows the
    connection's encoding and string settings); ids are ``int`` by construction. Why not
    psycopg's client-side binding: it re-parses the statement for every batch size,
    about a third of the append's CPU (py-spy, bench/HISTORY.md)."""
    def lit(v: str | None) -> bytes:
        return b"NULL" if v is None else quote(v.encode())

    return [b"(%d, %s::timestamptz, %s, %s, %s, %s, %s, %s, %s::json, %s, %s)" % (
        int(e.id), quote(e.at.isoformat().encode()), lit(e.agency), lit(e.actor),
        lit(e.action), lit(e.outcome), lit(e.target), lit(e.remote),
        quote(json.dumps(e.detail).encode()), lit(e.prev_hash), lit(e.hash)) for e in out]


def audit_insert_and_commit(quote: Quote, out: Sequence[AuditRow]) -> bytes:
    """The rows' insert, the head's update and ``COMMIT`` as one statement list (the
    second trip of an append that locked the head row first)."""
    last = out[-1]
    return b"".join([b"INSERT INTO audit_log (", _AUDIT_COLUMNS, b") VALUES ",
                     b", ".join(audit_values(quote, out)),
                     b"; UPDATE audit_head SET last_id = %d, last_hash = %s WHERE id = 1; COMMIT"
                     % (int(last.id), quote(last.hash.encode()))])


def audit_insert_if_head(quote: Quote, out: Sequence[AuditRow], head: tuple[int, str]) -> bytes:
    """One statement that moves the head from ``head`` to the last record and inserts the
    records, or, if the head is not at ``head`` any more, does nothing at all: the rows
    are joined with the head update's result, which is one row or none."""
    last = out[-1]
    return b"".join([
        b"WITH head AS (UPDATE audit_head SET last_id = %d, last_hash = %s "
        b"WHERE id = 1 AND last_id = %d AND last_hash = %s RETURNING 1) "
        % (int(last.id), quote(last.hash.encode()), int(head[0]), quote(head[1].encode())),
        b"INSERT INTO audit_log (", _AUDIT_COLUMNS, b") SELECT v.* FROM (VALUES ",
        b", ".join(audit_values(quote, out)), b") AS v (", _AUDIT_COLUMNS, b"), head"])


def libpq_quote(pg: Any) -> Quote:
    """libpq's literal quoting for one psycopg connection."""
    from psycopg.pq import Escaping

    quote: Quote = Escaping(pg.pgconn).escape_literal
    return quote
