"""pin_failures: wrong agent PINs across calls, for the login lockout

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pin_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_lifted", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("caller_lifted", sa.Boolean(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_failures")),
    )
    op.create_index("ix_pin_failures_agent_id_at", "pin_failures", ["agent_id", "at"])
    op.create_index("ix_pin_failures_caller_at", "pin_failures", ["caller", "at"])
    op.create_index("ix_pin_failures_at", "pin_failures", ["at"])


def downgrade() -> None:
    op.drop_table("pin_failures")
