"""The reviewer workspace's exposure ledger (vigil.review.ledger).

Why: seconds of clear and lightly-blurred viewing per reviewer, per day and per category,
so that caps and breaks can be enforced by the server across every scan a person reviews.

Revision ID: 0010
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_exposure",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("scan", sa.String(64), nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_index("ix_review_exposure_reviewer_day", "review_exposure", ["reviewer", "day"])
    op.create_index("ix_review_exposure_open", "review_exposure", ["reviewer", "ended_at"])
    op.create_index("ix_review_exposure_item", "review_exposure", ["scan", "item"])


def downgrade() -> None:
    op.drop_index("ix_review_exposure_item", "review_exposure")
    op.drop_index("ix_review_exposure_open", "review_exposure")
    op.drop_index("ix_review_exposure_reviewer_day", "review_exposure")
    op.drop_table("review_exposure")
