"""Bulk inserts that skip the ORM's per-row work: imports of millions of entries.

SQLAlchemy's executemany spends most of an import building parameter dicts, several
times the database's own time (measured with ``bench/imports.py``). Here each column's
bind processor is looked up once, rows become tuples, and they go to the driver in one
call: ``executemany`` on SQLite, ``COPY … FROM STDIN`` on PostgreSQL (the fastest way in).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, FromClause, Table

#: a column's bind processor (None: the driver takes the value as it is)
Processor = Callable[[Any], Any] | None


def bulk_insert(conn: Connection, table: FromClause, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name, all with the same keys) into ``table``."""
    if not rows:
        return
    names = list(rows[0])
    get = itemgetter(*names)
    plain = [get(r) for r in rows] if len(names) > 1 else [(get(r),) for r in rows]
    _insert(conn, table, names, lambda procs: _convert(plain, procs))


def bulk_insert_columns(conn: Connection, table: FromClause,
                        columns: dict[str, list[Any]]) -> None:
    """Insert rows given column by column (``name -> values``, all of one length).

    The same as ``bulk_insert`` without building a dict per row: callers whose values are
    columns already (a page of feed records) skip the per-row work (tests compare the two).
    """
    names = list(columns)
    if not names or not columns[names[0]]:
        return

    def tuples(procs: Sequence[Processor]) -> list[tuple[Any, ...]]:
        cols = [columns[n] if p is None else _convert_column(p, tuple(columns[n]))
                for n, p in zip(names, procs, strict=True)]
        return list(zip(*cols, strict=True))

    _insert(conn, table, names, tuples)


def _insert(conn: Connection, table: FromClause, names: list[str],
            make: Callable[[Sequence[Processor]], list[tuple[Any, ...]]]) -> None:
    if not isinstance(table, Table):  # a mapped class's __table__ is typed as any FromClause
        raise TypeError(f"bulk inserts go into a table, not {table!r}")
    dialect = conn.dialect
    cols = [table.c[n] for n in names]
    copy = dialect.name == "postgresql"
    # COPY takes Python values (psycopg adapts them); executemany needs the bind
    # processors (JSON serialisation, SQLite's datetime strings, booleans).
    procs: list[Processor] = [c.type.dialect_impl(dialect).bind_processor(dialect)
                              for c in cols]
    if copy:
        # JSON as its text, made once per distinct object (see _convert_column): the
        # dialect's processor wraps values for psycopg, which then serialised every row
        # again (a third of a 1M mirror sync's client time on PostgreSQL)
        text = getattr(dialect, "_json_serializer", None) or json.dumps
        procs = [text if isinstance(c.type, JSON) else None for c in cols]
    tuples = make(procs)
    raw = conn.connection.driver_connection
    if raw is None:
        raise RuntimeError(f"no open database connection to insert into {table.name}")
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    name = dialect.identifier_preparer.format_table(table)
    if copy:
        with raw.cursor() as cur, cur.copy(f"COPY {name} ({quoted}) FROM STDIN") as cp:
            for t in tuples:
                cp.write_row(t)
        return
    marks = ", ".join("?" for _ in names)
    cur = raw.cursor()
    try:
        cur.executemany(f"INSERT INTO {name} ({quoted}) VALUES ({marks})", tuples)
    finally:
        cur.close()


def _convert_column(p: Callable[[Any], Any], values: tuple[Any, ...]) -> list[Any]:
    """Apply a bind processor to one column's values, once per distinct object.

    Imports repeat the same objects (one timestamp per batch, one labels object per
    distinct label set), so keys are the ids of objects the rows keep alive.
    """
    first = values[0]
    if first is not None and values.count(first) == len(values):  # one timestamp, one label set
        return [p(first)] * len(values)
    memo: dict[int, Any] = {}
    out: list[Any] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        k = id(v)
        r = memo.get(k, memo)
        if r is memo:
            r = memo[k] = p(v)
        out.append(r)
    return out


def _convert(plain: list[tuple[Any, ...]],
             procs: Sequence[Processor]) -> list[tuple[Any, ...]]:
    """Row tuples converted column by column (C loops where no conversion is needed:
    zip, not a Python loop per value)."""
    if all(p is None for p in procs):
        return plain
    columns: list[Any] = list(zip(*plain, strict=True))
    for i, p in enumerate(procs):
        if p is not None:
            columns[i] = _convert_column(p, columns[i])
    return list(zip(*columns, strict=True))
