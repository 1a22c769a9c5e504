"""Witnessed audit heads: signed heads of peers' audit logs, and of this node's own.

Why: a node's audit chain, head row and anchor can all be rewound by someone holding the
node's audit key; copies of its signed heads kept by its peers cannot (vigil.audit.witness).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_witnesses",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("witness", sa.String(64), nullable=False),
        sa.Column("head_id", sa.BigInteger, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.String(40), nullable=False),
        sa.Column("sig", sa.String(128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agency", "witness", "head_id", name="uq_audit_witness"),
    )
    op.create_index("ix_audit_witness_received", "audit_witnesses",
                    ["agency", "witness", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_witness_received", "audit_witnesses")
    op.drop_table("audit_witnesses")
