"""article embeddings

Each article keeps its sentence embedding (clustering.embed: 384 float16 values), so
the in-memory story index is rebuilt from the database without running the encoder
again. Articles stored before have none; the service computes theirs when it first
loads them.

Revision ID: 20261125_01
Revises: 20261124_01
Create Date: 2026-11-23 16:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "20261125_01"
down_revision = "20261124_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch_op:
        batch_op.add_column(sa.Column("embedding", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch_op:
        batch_op.drop_column("embedding")
