"""agents: queue membership, agent states and their history; who answered a ticket

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answered_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=24), nullable=True))
    op.create_table(
        "queue_members",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("desk", sa.String(length=48), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("callback", sa.Boolean(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=24), nullable=True),
        sa.Column("claimed_by", sa.String(length=16), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_queue_members_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_sid", name=op.f("pk_queue_members")),
    )
    with op.batch_alter_table("queue_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_queue_members_left_at_desk"), ["left_at", "desk"], unique=False
        )
    op.create_table(
        "agent_states",
        sa.Column("agent_id", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("caller_sid", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_states")),
    )
    op.create_table(
        "agent_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_events")),
    )
    with op.batch_alter_table("agent_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agent_events_agent_id_id"), ["agent_id", "id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("agent_events")
    op.drop_table("agent_states")
    op.drop_table("queue_members")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("answered_at")
        batch_op.drop_column("answered_by")
