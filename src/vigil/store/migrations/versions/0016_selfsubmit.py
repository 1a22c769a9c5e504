"""Self-submitted cases (vigil.selfsubmit): cases, their entries, leads, one-time
challenges and rate-limit attempts.

Revision ID: 0016_selfsubmit
Revises: 0015_victimid
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_selfsubmit"
down_revision = "0015_victimid"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "self_cases",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("bank_id", BigId, sa.ForeignKey("banks.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("pin_hash", sa.String(300), nullable=False),
        sa.Column("key_alg", sa.String(32), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("concern", sa.String(32), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("withdrawn_at", When, nullable=True),
    )
    op.create_table(
        "self_case_entries",
        sa.Column("case_id", BigId, sa.ForeignKey("self_cases.id", ondelete="RESTRICT"),
                  primary_key=True),
        sa.Column("entry_id", BigId, sa.ForeignKey("entries.id", ondelete="RESTRICT"),
                  primary_key=True),
    )
    op.create_index("ix_self_case_entries_entry", "self_case_entries", ["entry_id"])
    op.create_table(
        "self_leads",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("case_id", BigId, sa.ForeignKey("self_cases.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("entry_id", BigId, sa.ForeignKey("entries.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("found_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_self_leads_case", "self_leads", ["case_id"])
    op.create_table(
        "self_challenges",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("case_number", sa.String(32), nullable=False),
        sa.Column("issued_at", When, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
    )
    op.create_table(
        "self_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("at", When, nullable=False),
    )
    op.create_index("ix_self_attempts_key_at", "self_attempts", ["key", "at"])


def downgrade() -> None:
    op.drop_table("self_attempts")
    op.drop_table("self_challenges")
    op.drop_index("ix_self_leads_case", "self_leads")
    op.drop_table("self_leads")
    op.drop_index("ix_self_case_entries_entry", "self_case_entries")
    op.drop_table("self_case_entries")
    op.drop_table("self_cases")
