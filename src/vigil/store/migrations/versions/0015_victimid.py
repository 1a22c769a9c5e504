"""Victim identification: the series registry (signed event chains), clues, hit notices.

Why: series state travels between agencies as signed, hash-chained records and is folded
from them on every node (``vigil.victimid``); hit notices and clues wait here until the
agency they are for pulls them.

Revision ID: 0015_victimid
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_victimid"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "series_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("seq", BigId, nullable=False),
        sa.Column("series_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("sig", sa.String(128), nullable=True),
        sa.UniqueConstraint("origin", "seq", name="uq_series_event"),
    )
    op.create_index("ix_series_events_series", "series_events", ["series_id"])
    op.create_table(
        "series_notes",
        sa.Column("series_id", sa.String(100), primary_key=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("valid_until", sa.String(40), nullable=False),
    )
    op.create_table(
        "series_cursors",
        sa.Column("peer", sa.String(100), primary_key=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("last_seq", BigId, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("hits_after", BigId, nullable=False),
        sa.Column("clues_after", BigId, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("synced_at", TS, nullable=True),
    )
    op.create_table(
        "series_clues",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("remote_id", BigId, nullable=True),
        sa.Column("series_id", sa.String(100), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("grants", sa.String(1000), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.UniqueConstraint("origin", "remote_id", name="uq_series_clue"),
    )
    op.create_index("ix_series_clues_series", "series_clues", ["series_id"])
    op.create_table(
        "operations",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("starts", sa.String(10), nullable=False),
        sa.Column("ends", sa.String(10), nullable=False),
        sa.Column("partners", sa.String(1000), nullable=False),
        sa.Column("series", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
    )
    op.create_table(
        "series_notify_rules",
        sa.Column("agency", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
    )
    op.create_table(
        "series_hits_out",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("series_id", sa.String(100), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("case_ref", sa.String(100), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_series_hits_out_origin", "series_hits_out", ["origin", "id"])
    op.create_table(
        "series_hits_in",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("finder", sa.String(64), nullable=False),
        sa.Column("remote_id", BigId, nullable=False),
        sa.Column("series_id", sa.String(100), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("case_ref", sa.String(100), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("finder", "remote_id", name="uq_series_hit_in"),
    )
    op.create_index("ix_series_hits_in_series", "series_hits_in", ["series_id"])


def downgrade() -> None:
    for t in ("operations", "series_hits_in", "series_hits_out", "series_notify_rules",
              "series_clues",
              "series_cursors", "series_notes", "series_events"):
        op.drop_table(t)
