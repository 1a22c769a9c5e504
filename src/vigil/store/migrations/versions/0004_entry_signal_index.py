"""One index on entries by signal instead of two: unique (signal_type, value, bank_id).

Why: entries carried two B-trees over the same random keys, the unique
``(bank_id, signal_type, value)`` and ``ix_entries_signal (signal_type, value)``; every
insert of a bulk import or first mirror sync paid for both (1M-entry mirror sync on
SQLite, receiver side: 71.3 s with both, 60.7 s with one; bench/mirror_apply.py). With the
columns reordered, one unique index both keeps an entry unique per bank and serves every
lookup by (type, value) across banks (exact matching of opaque signals, the existence
check of writes) and by type alone (index rebuilds).

SQLite cannot drop a table's UNIQUE constraint, so there the table is rebuilt as SQLite
documents it: a new table, the rows copied with their ids, the old one dropped and the new
one renamed, with foreign keys off (``vigil.store.db.migrate`` turns them off around the
migrations and runs ``PRAGMA foreign_key_check`` before committing). ``changes.entry_id``
names ``entries`` throughout, so it points at the new table.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
COLUMNS = ("id, bank_id, signal_type, value, quality, category_scheme, category, series, "
           "victim_status, tags, note, origin_agency, source, source_id, added_by, added_at, "
           "updated_at, seq, removed, extra")


def _entries_table(name: str, unique: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", BigId, sa.ForeignKey("banks.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(1024), nullable=False),
        sa.Column("quality", sa.SmallInteger),
        sa.Column("category_scheme", sa.String(16)),
        sa.Column("category", sa.String(16)),
        sa.Column("series", sa.String(200)),
        sa.Column("victim_status", sa.String(16), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("origin_agency", sa.String(64), nullable=False),
        sa.Column("source", sa.String(300)),
        sa.Column("source_id", sa.String(200)),
        sa.Column("added_by", sa.String(100)),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.UniqueConstraint(*unique, name="uq_entry_signal"),
    )


def _rebuild_sqlite(unique: tuple[str, ...], signal_index: bool) -> None:
    _entries_table("entries_new", unique)
    op.execute(f"INSERT INTO entries_new ({COLUMNS}) SELECT {COLUMNS} FROM entries")
    op.execute("DROP TABLE entries")  # with foreign keys on (and rows in changes) this fails
    op.execute("ALTER TABLE entries_new RENAME TO entries")
    if signal_index:
        op.create_index("ix_entries_signal", "entries", ["signal_type", "value"])
    op.create_index("ix_entries_bank_seq", "entries", ["bank_id", "seq"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(("signal_type", "value", "bank_id"), signal_index=False)
        return
    op.drop_index("ix_entries_signal", "entries")
    op.drop_constraint("uq_entry_signal", "entries", type_="unique")
    op.create_unique_constraint("uq_entry_signal", "entries", ["signal_type", "value", "bank_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(("bank_id", "signal_type", "value"), signal_index=True)
        return
    op.drop_constraint("uq_entry_signal", "entries", type_="unique")
    op.create_unique_constraint("uq_entry_signal", "entries", ["bank_id", "signal_type", "value"])
    op.create_index("ix_entries_signal", "entries", ["signal_type", "value"])
