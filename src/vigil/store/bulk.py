"""Bulk inserts that skip the ORM's per-row work: imports of millions of entries.

SQLAlchemy's executemany spends most of an import building parameter dicts, several
times the database's own time (measured with ``bench/imports.py``). Here each column's
bind processor is looked up once, rows become tuples, and they go to the driver in one
call: ``executemany`` on SQLite, ``COPY … FROM STDIN`` on PostgreSQL (the fastest way in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name, all with the same keys) into ``table``."""
    if not rows:
        return
    dialect = conn.dialect
    names = list(rows[0])
    cols = [table.c[n] for n in names]
    copy = dialect.name == "postgresql"
    # COPY takes Python values (psycopg adapts them); executemany needs the bind
    # processors (JSON serialisation, SQLite's datetime strings, booleans).
    procs = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in cols]
    if copy:
        procs = [p if c.type._type_affinity.__name__ == "JSON" else None  # type: ignore[attr-defined]
                 for p, c in zip(procs, cols, strict=True)]
    # Imports repeat the same objects (one timestamp, one labels object per distinct label
    # set): convert each object once. Keys are ids of objects the rows keep alive.
    memo: list[dict[int, Any]] = [{} for _ in names]

    def convert(i: int, v: Any) -> Any:
        p = procs[i]
        if p is None or v is None:
            return v
        m = memo[i]
        k = id(v)
        if k not in m:
            m[k] = p(v)
        return m[k]

    idx = list(enumerate(names))
    tuples = [tuple([convert(i, r[n]) for i, n in idx]) for r in rows]
    raw = conn.connection.driver_connection
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    name = dialect.identifier_preparer.format_table(table)
    if copy:
        with raw.cursor() as cur, cur.copy(f"COPY {name} ({quoted}) FROM STDIN") as cp:  # type: ignore[union-attr]
            for t in tuples:
                cp.write_row(t)
        return
    marks = ", ".join("?" for _ in names)
    cur = raw.cursor()  # type: ignore[union-attr]
    try:
        cur.executemany(f"INSERT INTO {name} ({quoted}) VALUES ({marks})", tuples)
    finally:
        cur.close()
