"""Banks, entries and the per-bank change log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "banks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("default_scheme", sa.String(16)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "entries",
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
        sa.UniqueConstraint("bank_id", "signal_type", "value", name="uq_entry_signal"),
    )
    op.create_index("ix_entries_signal", "entries", ["signal_type", "value"])
    op.create_index("ix_entries_bank_seq", "entries", ["bank_id", "seq"])
    op.create_table(
        "changes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", BigId, sa.ForeignKey("banks.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("entry_id", BigId, sa.ForeignKey("entries.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("by", sa.String(100)),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.UniqueConstraint("bank_id", "seq", name="uq_change_seq"),
    )


def downgrade() -> None:
    op.drop_table("changes")
    op.drop_index("ix_entries_bank_seq", "entries")
    op.drop_index("ix_entries_signal", "entries")
    op.drop_table("entries")
    op.drop_table("banks")
