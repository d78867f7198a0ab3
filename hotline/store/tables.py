"""The schema. Alembic migrations in `hotline/migrations` create exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ticket store")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("caller", String(32), nullable=False),
    Column("called", String(32), nullable=False),
    Column("language", String(8), nullable=False),
    Column("menu_path", JSON, nullable=False),
    Column("specialty", String(48)),
    Column("department", String(48)),
    Column("queue", String(64)),
    Column("channel", String(16), nullable=False),
    Column("appeal_type", String(16), nullable=False),
    Column("feedback_tier", String(8)),
    Column("due_at", UtcDateTime()),
    Column("status", String(16), nullable=False),
    Column("callback_requested", Boolean, nullable=False),
    Column("wants_voicemail", Boolean, nullable=False),
    Column("queue_result", String(24)),
    Column("transcript", Text),
    # What the caller's words were taken to mean: candidates, scores, appeal, their choice.
    Column("classification", JSON),
    Column("answered_by", String(16)),  # the agent who took the call
    Column("answered_at", UtcDateTime()),
    Column("outcome", String(24)),  # what the agent keyed in wrap-up
    Column("wrapped_at", UtcDateTime()),  # the agent's wrap-up ended: handle time ends
    Column("call_status", String(16)),
    # After the call: the department's handling (see casework/actions.py) and the survey.
    Column("district", String(24)),  # where the enterprise is registered (config/districts.yaml)
    Column("accepted_at", UtcDateTime()),
    Column("responded_at", UtcDateTime()),  # first answer to the enterprise: the response rate
    Column("response", Text),
    Column("resolved_at", UtcDateTime()),
    Column("resolution", Text),
    Column("closed_at", UtcDateTime()),
    Column("extension", JSON),  # {"days", "reason", "requested_by", "approved_by", ...}: once
    Column("due_warned", String(8)),  # "24h" or "overdue": the last due warning logged
    Column("satisfaction", String(24)),  # satisfied | basically-satisfied | dissatisfied
    Column("satisfaction_at", UtcDateTime()),
    Column("call_duration_s", Integer),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("call_ended_at", UtcDateTime()),
    Column("version", Integer, nullable=False),
    Index(None, "status", "queue"),
    Index(None, "specialty", "created_at"),
    Index(None, "created_at"),
    Index(None, "department", "status"),
    Index(None, "due_at"),
)

ticket_history = Table(
    "ticket_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(48), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("note", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    Index(None, "ticket_id", "id"),
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sid", String(64), nullable=False, unique=True),
    Column("url", String(500), nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index(None, "ticket_id"),
)

# One row per local day: the day's last ticket sequence number.
ticket_counters = Table(
    "ticket_counters",
    metadata,
    Column("day", String(8), primary_key=True),
    Column("last", Integer, nullable=False),
)

# The service's own view of who waits in which queue: the service chooses the caller an
# agent gets, and takes that caller out of the carrier's queue by name.
queue_members = Table(
    "queue_members",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("desk", String(48), nullable=False),  # the specialty whose queue it is
    Column("queue", String(64), nullable=False),
    Column("callback", Boolean, nullable=False),
    # Waited past the desk's maximum with no agent ready: backup agents may take them first.
    Column("overdue", Boolean, nullable=False, server_default="0"),
    Column("joined_at", UtcDateTime(), nullable=False),
    Column("left_at", UtcDateTime()),
    Column("result", String(24)),
    Column("claimed_by", String(16)),  # the agent about to be connected to this caller
    Column("claimed_at", UtcDateTime()),
    # The carrier's id of the queue, as the caller's first hold webhook reported it: taking
    # this caller out of the queue by name needs it (routing/acd.py chose the caller).
    Column("queue_sid", String(64)),
    Index(None, "left_at", "desk"),
)

agent_states = Table(
    "agent_states",
    metadata,
    Column("agent_id", String(16), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    Column("call_sid", String(64)),  # the agent's own call
    Column("caller_sid", String(64)),  # the caller they are connected to, if any
)

agent_events = Table(
    "agent_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent_id", String(16), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Index(None, "agent_id", "id"),
)

# Wrong agent PINs, one row per attempt: the agent id keyed and the number that called
# (hotline/auth/lockout.py decides when they lock a login). Kept while they can still matter.
# A supervisor's lift stops a failure counting against the agent id (and against the
# agent's own number), not against an intruder's number.
pin_failures = Table(
    "pin_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent_id", String(64), nullable=False),  # as keyed: perhaps no agent at all
    Column("caller", String(32), nullable=False),  # E.164, or withheld / unknown
    Column("at", UtcDateTime(), nullable=False),
    Column("agent_lifted", Boolean, nullable=False, server_default="0"),
    Column("caller_lifted", Boolean, nullable=False, server_default="0"),
    Index(None, "agent_id", "at"),
    Index(None, "caller", "at"),
    Index(None, "at"),
)

# Agents added through the ops API (those of config/agents.yaml are not stored here).
agents = Table(
    "agents",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(60), nullable=False),
    Column("answers_on", String(80), nullable=False),
    Column("pin_hash", String(200), nullable=False),
    Column("desks", JSON, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Outbound calls owed to enterprises: callbacks and satisfaction surveys. Stored, never only
# in memory; claimed by one dispatcher at a time (SKIP LOCKED on PostgreSQL).
callback_jobs = Table(
    "callback_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # callback | survey
    # One job per reason: a retried webhook or a second dispatcher cannot add another.
    Column("dedupe", String(80), nullable=False, unique=True),
    Column("desk", String(48)),
    Column("state", String(16), nullable=False),  # pending | dialing | done | failed
    Column("attempts", Integer, nullable=False),
    Column("not_before", UtcDateTime(), nullable=False),
    Column("call_sid", String(64), unique=True),  # the outbound call of the current attempt
    Column("claimed_by", String(64)),
    Column("claimed_at", UtcDateTime()),
    Column("last_result", String(32)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index(None, "state", "not_before"),
    Index(None, "ticket_id"),
)

# The ticket operations already applied, by idempotency key (the call's id and Twilio's
# idempotency token of the webhook): a retried webhook, or a spooled operation replayed after
# its first attempt did reach the database, is applied once. Written in the transaction of
# the change; old keys are pruned (see store/durable.py).
ticket_operations = Table(
    "ticket_operations",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index(None, "at"),
)

# People who log in to the service's pages (the agents' desk, the departments' cases, the
# centre). Only an Argon2id hash of a password is kept.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # agent | department | centre | admin
    Column("department", String(48)),  # department staff: a department of the config
    Column("agent_id", String(16)),  # agents: the agent they are on the phone
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Wrong passwords given for an account, for the lockout (auth/accounts.py). Kept in the
# database so every process counts the same ones; cleared by a good login, pruned once too
# old to count.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index(None, "user_id", "at"),
)
