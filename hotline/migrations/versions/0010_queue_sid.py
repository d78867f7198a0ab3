"""queue_members: the carrier's id of the queue a caller waits in (to take that caller out)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_sid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_members", schema=None) as batch_op:
        batch_op.drop_column("queue_sid")
