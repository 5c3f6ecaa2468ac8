"""listing sort indexes

The cluster listing orders by (last_published_at, id) or (article_count, id) and reads
one page: composite indexes let both databases read the page off the index instead of
sorting every story. ix_clusters_latest replaces ix_clusters_last_published_at, which
is its prefix.

Revision ID: 20261124_01
Revises: 20261122_02
Create Date: 2026-11-23 03:40:00.000000
"""

from alembic import op

revision = "20261124_01"
down_revision = "20261122_02"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_clusters_latest", "clusters", ["last_published_at", "id"], unique=False)
    op.create_index("ix_clusters_largest", "clusters", ["article_count", "id"], unique=False)
    op.drop_index("ix_clusters_last_published_at", table_name="clusters")


def downgrade() -> None:
    op.create_index("ix_clusters_last_published_at", "clusters", ["last_published_at"], unique=False)
    op.drop_index("ix_clusters_largest", table_name="clusters")
    op.drop_index("ix_clusters_latest", table_name="clusters")
