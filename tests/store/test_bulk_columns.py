"""``bulk_insert_columns`` (rows given column by column) stores what ``bulk_insert`` stores."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.store.test_bulk import _load, _rows
from vigil.store.bulk import bulk_insert, bulk_insert_columns
from vigil.store.models import Bank, Entry


def test_columns_equal_rows(engine: Engine) -> None:
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        for name in ("rows", "cols"):
            s.add(Bank(name=name, agency="SG-SPF", description="", created_at=now,
                       updated_at=now, last_seq=0))
    with Session(engine) as s, s.begin():
        ids = dict(s.execute(select(Bank.name, Bank.id)).all())
        bulk_insert(s.connection(), Entry.__table__, _rows(ids["rows"], "a"))
        rows = _rows(ids["cols"], "b")
        bulk_insert_columns(s.connection(), Entry.__table__,
                            {k: [r[k] for r in rows] for k in rows[0]})
        bulk_insert_columns(s.connection(), Entry.__table__, {})  # nothing: no error
    with Session(engine) as s:
        expected, got = _load(s, ids["rows"]), _load(s, ids["cols"])
    assert len(got) == 40 and got == expected


def test_copy_text_stores_what_psycopg_rows_store(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: COPY text built by ``copy_text`` against psycopg's ``write_row``."""
    import vigil.store.bulk as bulk

    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        for name in ("psycopg", "text"):
            s.add(Bank(name=name, agency="SG-SPF", description="", created_at=now,
                       updated_at=now, last_seq=0))
    with Session(engine) as s, s.begin():
        ids = dict(s.execute(select(Bank.name, Bank.id)).all())
        monkeypatch.setattr(bulk, "COPY_AS_TEXT", False)
        rows = _rows(ids["psycopg"], "a")
        rows[5]["note"] = "back\\slash\ttab\r\nnew \\N line"
        bulk_insert(s.connection(), Entry.__table__, rows)
        monkeypatch.setattr(bulk, "COPY_AS_TEXT", True)
        rows = _rows(ids["text"], "b")
        rows[5]["note"] = "back\\slash\ttab\r\nnew \\N line"
        bulk_insert(s.connection(), Entry.__table__, rows)
    with Session(engine) as s:
        expected, got = _load(s, ids["psycopg"]), _load(s, ids["text"])
    assert len(got) == 40 and got == expected


def test_copy_text_format() -> None:
    from vigil.store.bulk import copy_text

    when = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)
    assert copy_text([("a\tb", None, 3, True, when), ("x\\y", "z\n", 4, False, when)]) == (
        "a\\tb\t\\N\t3\tt\t2026-11-30T01:02:03+00:00\n"
        "x\\\\y\tz\\n\t4\tf\t2026-11-30T01:02:03+00:00\n")
