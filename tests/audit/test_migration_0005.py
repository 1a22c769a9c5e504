"""Migration 0005 adds the witnessed audit heads table to a store at 0004 (the audit log
itself untouched), keeps one copy per (agency, witness, head), and downgrades cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import _backends, store_engine
from vigil.audit import AuditLog
from vigil.store.db import run_alembic


@pytest.fixture(params=_backends())
def bare(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with store_engine(request.param, tmp_path, migrated=False) as eng:
        yield eng


def test_0005_adds_the_witness_table_and_downgrades(bare: Engine) -> None:
    run_alembic(bare, "upgrade", "0004")
    log = AuditLog(bare, b"k" * 32)
    for i in range(3):
        log.append("bank.add", detail={"i": i})
    assert "audit_witnesses" not in inspect(bare).get_table_names()
    run_alembic(bare, "upgrade", "0005")
    assert "audit_witnesses" in inspect(bare).get_table_names()
    assert AuditLog(bare, b"k" * 32).verify().ok  # the log is as it was
    row = {"a": "SG-SPF", "w": "HK-POL", "i": 3, "h": "a" * 64, "t": "x", "s": "b" * 128}
    insert = text("INSERT INTO audit_witnesses (agency, witness, head_id, head_hash, signed_at,"
                  " sig, received_at) VALUES (:a, :w, :i, :h, :t, :s, CURRENT_TIMESTAMP)")
    with bare.begin() as c:
        c.execute(insert, row)
    with pytest.raises(IntegrityError), bare.begin() as c:
        c.execute(insert, row)
    run_alembic(bare, "downgrade", "0004")
    assert "audit_witnesses" not in inspect(bare).get_table_names()
    run_alembic(bare, "upgrade", "head")
    assert "audit_witnesses" in inspect(bare).get_table_names()
