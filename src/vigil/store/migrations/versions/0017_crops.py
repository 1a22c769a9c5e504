"""Crop ladders: a bank may store derived PDQ codes of each banked picture.

Why: a copy that was cropped, framed or captioned misses its original's PDQ; a bank with
a crop ladder keeps codes of sub-windows of each picture (in the entry's ``extra``,
``pdq_derived``) and the indexes search them (``vigil.matching.variants``).

Revision ID: 0017_crops
Revises: 0016_selfsubmit
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_crops"
down_revision = "0016_selfsubmit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch:
        batch.add_column(sa.Column("crop_ladder", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("banks") as batch:
        batch.drop_column("crop_ladder")
