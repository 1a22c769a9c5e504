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
