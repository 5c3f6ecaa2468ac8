"""threads

A story cluster is one event; a thread links the events of one ongoing story. Every
cluster names its thread by ``thread_id``: the id of the thread's first event. Stories
stored before are each a thread of their own. A change-feed event of a story opened
says which thread it joined.

Revision ID: 20261202_01
Revises: 20261201_01
Create Date: 2026-12-02 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_01"
down_revision = "20261201_01"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch_op:
        batch_op.add_column(sa.Column("thread_id", _ID, nullable=True))
    op.execute("UPDATE clusters SET thread_id = id")
    op.create_index("ix_clusters_thread", "clusters", ["thread_id", "first_published_at", "id"])
    with op.batch_alter_table("changes") as batch_op:
        batch_op.add_column(sa.Column("thread_id", _ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch_op:
        batch_op.drop_column("thread_id")
    op.drop_index("ix_clusters_thread", table_name="clusters")
    with op.batch_alter_table("clusters") as batch_op:
        batch_op.drop_column("thread_id")
