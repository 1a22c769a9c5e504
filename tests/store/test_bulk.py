"""The bulk insert path must store exactly what SQLAlchemy's own insert stores."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from vigil.store.bulk import bulk_insert
from vigil.store.models import Bank, Entry


def _rows(bank_id: int, prefix: str) -> list[dict[str, object]]:
    when = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
    tags = ("a", "b")
    return [{"bank_id": bank_id, "signal_type": "md5", "value": f"{prefix}{i:031x}",
             "quality": i if i % 2 else None, "category_scheme": "us", "category": str(i % 6),
             "series": None if i % 3 else f"S{i}", "victim_status": "unknown",
             "tags": tags if i % 2 else (), "note": "n\tote,\"q\"\n" if i == 3 else None,
             "origin_agency": "SG-SPF", "source": "t", "source_id": None, "added_by": "x",
             "added_at": when, "updated_at": when, "seq": i + 1, "removed": i == 4,
             "extra": {"k": [1, "v"]} if i % 2 else {}} for i in range(40)]


def _load(s: Session, bank_id: int) -> list[tuple[object, ...]]:
    out = []
    for e in s.scalars(select(Entry).where(Entry.bank_id == bank_id).order_by(Entry.seq)):
        out.append((e.value[1:], e.quality, e.category, e.series, e.tags, e.note,
                    e.added_at.replace(tzinfo=None), e.seq, e.removed, e.extra))
    return out


def test_bulk_insert_equals_sqlalchemy_insert(engine: Engine) -> None:
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        for name in ("ref", "bulk"):
            s.add(Bank(name=name, agency="SG-SPF", description="", created_at=now,
                       updated_at=now, last_seq=0))
    with Session(engine) as s, s.begin():
        ids = dict(s.execute(select(Bank.name, Bank.id)).all())
        ref = _rows(ids["ref"], "a")
        s.execute(insert(Entry), [{**r, "tags": list(r["tags"])} for r in ref])  # type: ignore[arg-type]
        bulk_insert(s.connection(), Entry.__table__, _rows(ids["bulk"], "b"))
    with Session(engine) as s:
        expected, got = _load(s, ids["ref"]), _load(s, ids["bulk"])
    assert len(got) == 40 and got == expected
