"""corrections

An editor's corrections of the stories (move an article, split a story, merge two), one
row each: what was corrected, into which story, which articles, by whom and why. They
hold against every later automatic decision (``clustering.editorial``). A change-feed
event made by a correction names it.

Revision ID: 20261203_01
Revises: 20261202_02
Create Date: 2026-12-03 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "20261203_01"
down_revision = "20261202_02"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("cluster_id", _ID, nullable=False),
        sa.Column("into_cluster_id", _ID, nullable=False),
        sa.Column("opened", sa.Boolean(), nullable=False),
        sa.Column("article_ids", sa.JSON(), nullable=False),
        sa.Column("editor", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_corrections_cluster_id", "corrections", ["cluster_id"])
    with op.batch_alter_table("changes") as batch_op:
        batch_op.add_column(sa.Column("correction_id", _ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch_op:
        batch_op.drop_column("correction_id")
    op.drop_index("ix_corrections_cluster_id", table_name="corrections")
    op.drop_table("corrections")
