"""article decisions

Each article keeps the decision that placed it, as it was made (clustering.assign:
explanation): the rule that decided, the score and the bar, and the best few stories
scored with their feature values. Articles stored before have none.

Revision ID: 20261202_02
Revises: 20261202_01
Create Date: 2026-12-02 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "20261202_02"
down_revision = "20261202_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch_op:
        batch_op.add_column(sa.Column("decision", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch_op:
        batch_op.drop_column("decision")
