"""Takedown forwarding: how far this node has pulled each partner's forwarded notices.

Why: a pull resumes where the last one stopped, across restarts, and two workers pulling
at once only repeat work that is idempotent (a URL already reported is not added twice).

Revision ID: 0014
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "takedown_forward_cursors",
        sa.Column("agency", sa.String(64), primary_key=True),
        sa.Column("after", BigId, nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("takedown_forward_cursors")
