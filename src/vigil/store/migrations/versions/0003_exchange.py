"""Federation tables: share rules, feeds and their records, peers, opinions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "share_rules",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", BigId, sa.ForeignKey("banks.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("reshare", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.UniqueConstraint("bank_id", "agency", name="uq_share_rule"),
    )
    op.create_table(
        "feeds",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", BigId, sa.ForeignKey("banks.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("mirror", sa.Boolean, nullable=False),
        sa.Column("descriptor", sa.String(1000), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("peer", sa.String(100)),
        sa.Column("synced_at", TS),
        sa.Column("error", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.UniqueConstraint("descriptor", name="uq_feed_descriptor"),
    )
    op.create_index("ix_feeds_bank", "feeds", ["bank_id"])
    op.create_table(
        "feed_records",
        sa.Column("feed_id", BigId, sa.ForeignKey("feeds.id", ondelete="RESTRICT"),
                  primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("sig", sa.String(128)),
    )
    op.create_table(
        "peers",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("agency", sa.String(64), sa.ForeignKey("agencies.code", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("synced_at", TS),
        sa.Column("error", sa.Text),
        sa.Column("opinions_after", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "opinions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", BigId, sa.ForeignKey("banks.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(1024), nullable=False),
        sa.Column("opinion", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.String(200)),
        sa.Column("at", TS, nullable=False),
        sa.Column("remote_id", sa.BigInteger),
        sa.Column("extra", sa.JSON, nullable=False),
    )
    op.create_index("ix_opinions_bank", "opinions", ["bank_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_opinions_bank", "opinions")
    op.drop_table("opinions")
    op.drop_table("peers")
    op.drop_table("feed_records")
    op.drop_index("ix_feeds_bank", "feeds")
    op.drop_table("feeds")
    op.drop_table("share_rules")
