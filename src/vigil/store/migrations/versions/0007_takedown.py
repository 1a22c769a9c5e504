"""Takedown: reported URLs, their fetches, notices, the messages sent and host contacts.

Why: the notice loop's due work lives in the database (``next_check_at``,
``next_due_at`` and the leases), so it survives restarts and kills and two workers never
take the same row (vigil.takedown.schedule).

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "takedown_urls",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("url_key", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("case_ref", sa.String(200), nullable=False),
        sa.Column("added_by", sa.String(200)),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_check_at", TS),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", TS),
        sa.UniqueConstraint("url_key", name="uq_takedown_url"),
    )
    op.create_index("ix_takedown_urls_due", "takedown_urls", ["next_check_at"])
    op.create_table(
        "takedown_fetches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("url_id", BigId, sa.ForeignKey("takedown_urls.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("content_type", sa.String(200)),
        sa.Column("final_url", sa.Text),
        sa.Column("address", sa.String(64)),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("size", sa.Integer),
        sa.Column("error_code", sa.String(32)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_takedown_fetches_url", "takedown_fetches", ["url_id", "id"])
    op.create_table(
        "takedown_notices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("url_id", BigId, sa.ForeignKey("takedown_urls.id", ondelete="RESTRICT"),
                  nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("case_ref", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("series", sa.JSON, nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("deadline_at", TS, nullable=False),
        sa.Column("sends", sa.Integer, nullable=False),
        sa.Column("first_sent_at", TS),
        sa.Column("last_sent_at", TS),
        sa.Column("escalated_at", TS),
        sa.Column("acknowledged_at", TS),
        sa.Column("removed_at", TS),
        sa.Column("removal", sa.String(16)),
        sa.Column("closed_at", TS),
        sa.Column("problem", sa.Text),
        sa.Column("next_due_at", TS),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", TS),
    )
    op.create_index("ix_takedown_notices_due", "takedown_notices", ["next_due_at"])
    op.create_index("ix_takedown_notices_domain", "takedown_notices", ["domain"])
    op.create_index("ix_takedown_notices_url", "takedown_notices", ["url_id"])
    op.create_table(
        "takedown_notice_entries",
        sa.Column("notice_id", BigId,
                  sa.ForeignKey("takedown_notices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("entry_id", BigId, primary_key=True),
    )
    op.create_index("ix_takedown_notice_entries_entry", "takedown_notice_entries",
                    ["entry_id"])
    op.create_table(
        "takedown_links",
        sa.Column("notice_id", BigId,
                  sa.ForeignKey("takedown_notices.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("earlier_id", BigId,
                  sa.ForeignKey("takedown_notices.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "takedown_sends",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("notice_id", BigId,
                  sa.ForeignKey("takedown_notices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("to_addr", sa.String(320), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.UniqueConstraint("notice_id", "seq", name="uq_takedown_send"),
    )
    op.create_table(
        "takedown_contacts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("escalation_email", sa.String(320)),
        sa.Column("country", sa.String(2)),
        sa.UniqueConstraint("domain", name="uq_takedown_contact"),
    )


def downgrade() -> None:
    for t in ("takedown_contacts", "takedown_sends", "takedown_links",
              "takedown_notice_entries", "takedown_notices", "takedown_fetches",
              "takedown_urls"):
        op.drop_table(t)
