"""index window and change feed

term_archive: document frequencies of articles that left the in-memory index window.
changes: the change feed, one row per story event, numbered in commit order.
On SQLite, clusters and articles become AUTOINCREMENT tables, so the id of a deleted
(taken down, pruned) row is never handed out again: ids stored by clients never come
to mean something else.

Revision ID: 20261122_02
Revises: 20261122_01
Create Date: 2026-11-23 00:01:24.902512
"""

import sqlalchemy as sa
from alembic import op

revision = "20261122_02"
down_revision = "20261122_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cluster_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("into_cluster_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("article_count", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_changes")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "term_archive",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n_docs", sa.BigInteger(), nullable=False),
        sa.Column("terms", sa.LargeBinary(), nullable=False),
        sa.Column("counts", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_term_archive")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for table in ("clusters", "articles"):
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
                pass


def downgrade() -> None:
    op.drop_table("term_archive")
    op.drop_table("changes")
