"""Migration 0004 (one unique (signal_type, value, bank_id) index on entries) keeps every
row of a store filled at 0003, its ids and the change log's references, and still keeps an
entry unique per bank; the cross-bank lookup by value uses the new index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import _backends, store_engine
from vigil.banks import Banks, EntryReader
from vigil.banks.entry import EntryRecord, Labels
from vigil.store.db import run_alembic


def _alembic(engine: Engine, target: str, down: bool = False) -> None:
    run_alembic(engine, "downgrade" if down else "upgrade", target)


@pytest.fixture(params=_backends())
def bare(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An unmigrated store."""
    with store_engine(request.param, tmp_path, migrated=False) as eng:
        yield eng


def _dump(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with engine.connect() as c:
        entries = [tuple(r) for r in c.execute(text(
            "SELECT id, bank_id, signal_type, value, quality, category, series, tags, seq, "
            "removed, extra FROM entries ORDER BY id"))]
        changes = [tuple(r) for r in c.execute(text(
            "SELECT id, bank_id, seq, op, entry_id FROM changes ORDER BY id"))]
    return entries, changes


def test_upgrade_keeps_rows_and_uniqueness_and_downgrades(bare: Engine) -> None:
    _alembic(bare, "0003")
    b = Banks(bare, user="t")
    for name in ("a", "b"):
        b.create(name, "SG-SPF")
        b.apply(name, [EntryRecord("md5", f"{i:032x}", Labels(category=("us", "1")),
                                   extra={"k": i}) for i in range(50)])
    b.apply("a", [EntryRecord("md5", f"{3:032x}", op="remove"),
                  EntryRecord("pdq", "f" * 64, Labels(series="S"), 90)])
    before = _dump(bare)
    _alembic(bare, "0004")
    assert _dump(bare) == before
    if bare.dialect.name == "sqlite":
        with bare.connect() as c:
            assert c.execute(text("PRAGMA foreign_key_check")).all() == []
            assert c.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            names = {r[1] for r in c.execute(text("PRAGMA index_list('entries')"))}
            assert "ix_entries_signal" not in names and "ix_entries_bank_seq" in names
            plan = " ".join(str(r[-1]) for r in c.execute(text(
                "EXPLAIN QUERY PLAN SELECT id FROM entries WHERE signal_type = 'md5' "
                "AND value IN ('a', 'b')")))
            assert "USING" in plan and "INDEX" in plan, plan
    # still unique per bank, and the same value may sit in two banks
    with pytest.raises(IntegrityError), bare.begin() as c:
        c.execute(text("INSERT INTO entries (bank_id, signal_type, value, victim_status, tags, "
                       "origin_agency, added_at, updated_at, seq, removed, extra) SELECT "
                       "bank_id, signal_type, value, victim_status, tags, origin_agency, "
                       "added_at, updated_at, 999, removed, extra FROM entries WHERE id = 1"))
    b.apply("a", [EntryRecord("md5", f"{i:032x}", Labels(category=("us", "2")))
                  for i in range(60)])
    assert b.get("a").entries == 61 and b.get("b").entries == 50  # 60 md5 + the pdq
    assert len(EntryReader(b.engine).find("md5", [f"{7:032x}"])) == 2
    _alembic(bare, "0003", down=True)
    _alembic(bare, "0004")
    assert b.get("a").entries == 61
