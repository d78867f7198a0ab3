"""the departments' handling, satisfaction, and callback jobs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("district", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("accepted_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("responded_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("response", sa.Text(), nullable=True))
        batch.add_column(sa.Column("resolved_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch.add_column(sa.Column("closed_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("extension", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("due_warned", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("satisfaction", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("satisfaction_at", _WHEN, nullable=True))
        batch.create_index("ix_tickets_department_status", ["department", "status"])
        batch.create_index("ix_tickets_due_at", ["due_at"])
    op.create_table(
        "callback_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("dedupe", sa.String(length=80), nullable=False),
        sa.Column("desk", sa.String(length=48), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", _WHEN, nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", _WHEN, nullable=True),
        sa.Column("last_result", sa.String(length=32), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_callback_jobs_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_jobs")),
        sa.UniqueConstraint("dedupe", name=op.f("uq_callback_jobs_dedupe")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_callback_jobs_call_sid")),
    )
    op.create_index("ix_callback_jobs_state_not_before", "callback_jobs", ["state", "not_before"])
    op.create_index("ix_callback_jobs_ticket_id", "callback_jobs", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("callback_jobs")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_due_at")
        batch.drop_index("ix_tickets_department_status")
        for name in (
            "satisfaction_at",
            "satisfaction",
            "due_warned",
            "extension",
            "closed_at",
            "resolution",
            "resolved_at",
            "response",
            "responded_at",
            "accepted_at",
            "district",
        ):
            batch.drop_column(name)
