"""article features

Each article keeps its term vectors as they were prepared (clustering.vectorise:
PackedFeatures.to_bytes, int32 indices and float32 weights), so another replica
catching up, or a restart, adds an article to the story index without extracting and
featurising its text again. Articles stored before have none; the service computes
theirs when it first loads them.

Revision ID: 20261201_01
Revises: 20261125_01
Create Date: 2026-12-01 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "20261201_01"
down_revision = "20261125_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch_op:
        batch_op.add_column(sa.Column("features", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch_op:
        batch_op.drop_column("features")
