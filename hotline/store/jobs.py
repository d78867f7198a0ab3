"""Outbound calls owed to enterprises (callbacks, surveys): stored first, dialled later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework.callbacks import (
    Attempt,
    CallbackPolicy,
    OwedCall,
    after_attempt,
    attempt_from,
    choose,
)
from casework.phone import PhoneNumber
from casework.tickets import CALL_PATH, RecordingKind, TicketStatus
from hotline.store.engine import reads
from hotline.store.history import add_history
from hotline.store.tables import callback_jobs, recordings, tickets
from hotline.twilio.numbers import party
from ivr.outbound import OwedCallFacts

DISPATCHER = "system:dispatcher"


class JobKind(StrEnum):
    CALLBACK = "callback"
    SURVEY = "survey"


class JobState(StrEnum):
    PENDING = "pending"
    DIALING = "dialing"  # claimed by a dispatcher; the call is being placed or is live
    DONE = "done"
    FAILED = "failed"  # attempts exhausted


def owe_call(
    conn: Connection,
    *,
    ticket_id: int,
    kind: JobKind,
    desk: str | None,
    not_before: datetime,
    dedupe: str,
    at: datetime,
) -> bool:
    """Store a job in the caller's transaction; False when `dedupe` already has one, or
    when the ticket's caller cannot be called back.

    Every job is made here, so this is where a withheld or unknown caller, or a number no
    network assigns, is refused: such a job would be dialled, fail, and be dialled again
    until its attempts ran out. The caller is read as the webhook read it, so a ticket
    stored before withheld callers were recorded as such (`+266696687`) is refused too.
    """
    known = conn.scalar(select(callback_jobs.c.id).where(callback_jobs.c.dedupe == dedupe))
    if known is not None:
        return False
    number = party(conn.scalar(select(tickets.c.caller).where(tickets.c.id == ticket_id)))
    if not isinstance(number, PhoneNumber) or not number.can_be_called_back:
        note = f"{kind.value} owed, but the caller's number cannot be called back"
        add_history(conn, ticket_id, at, note, {"dedupe": dedupe}, actor=DISPATCHER)
        return False
    conn.execute(
        callback_jobs.insert().values(
            ticket_id=ticket_id,
            kind=kind.value,
            dedupe=dedupe,
            desk=desk,
            state=JobState.PENDING.value,
            attempts=0,
            not_before=not_before,
            created_at=at,
            updated_at=at,
        )
    )
    return True


@dataclass(frozen=True)
class ClaimedCall:
    """A job this dispatcher now owns: place its call."""

    job_id: int
    kind: JobKind
    ticket: str
    number: str
    lang: str
    desk: str | None
    attempt: int


@dataclass(frozen=True)
class Settled:
    ticket: str
    kind: JobKind
    attempt: Attempt
    state: JobState


# Claims are taken one dispatcher at a time so the in-flight caps hold across processes.
_CLAIM_LOCK = 0x12345_CB


class JobStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # For blocks that only read (on SQLite they never hold the write lock).
        self.reads = reads(engine)

    async def claim(self, now: datetime, policy: CallbackPolicy, owner: str) -> list[ClaimedCall]:
        """Take the calls to place now, within the caps; each job is claimed exactly once."""
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CLAIM_LOCK})
            await self._recover_lost(conn, now, policy)
            live = (
                await conn.execute(
                    select(callback_jobs.c.kind, callback_jobs.c.desk, func.count())
                    .where(callback_jobs.c.state == JobState.DIALING.value)
                    .group_by(callback_jobs.c.kind, callback_jobs.c.desk)
                )
            ).all()
            live_total = sum(int(n) for _, _, n in live)
            live_by_desk = {
                str(desk): int(n) for kind, desk, n in live if kind == "callback" and desk
            }
            query = (
                select(callback_jobs)
                .where(callback_jobs.c.state == JobState.PENDING.value)
                .where(callback_jobs.c.not_before <= now)
                .order_by(callback_jobs.c.created_at, callback_jobs.c.id)
                .limit(max(1, policy.max_in_flight) * 20)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = {r.id: r for r in (await conn.execute(query)).all()}
            pending = [OwedCall(r.id, r.kind, r.desk, r.created_at) for r in rows.values()]
            claimed: list[ClaimedCall] = []
            for owed in choose(pending, live_total, live_by_desk, policy):
                row = rows[owed.job_id]
                await conn.execute(
                    callback_jobs.update()
                    .where(callback_jobs.c.id == row.id)
                    .values(
                        state=JobState.DIALING.value,
                        attempts=row.attempts + 1,
                        claimed_by=owner,
                        claimed_at=now,
                        call_sid=None,
                        updated_at=now,
                    )
                )
                ticket = (
                    await conn.execute(
                        select(tickets.c.number, tickets.c.caller, tickets.c.language).where(
                            tickets.c.id == row.ticket_id
                        )
                    )
                ).one()
                claimed.append(
                    ClaimedCall(
                        row.id,
                        JobKind(row.kind),
                        ticket.number,
                        ticket.caller,
                        ticket.language,
                        row.desk,
                        row.attempts + 1,
                    )
                )
            return claimed

    async def placed(self, job_id: int, call_sid: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                callback_jobs.update()
                .where(callback_jobs.c.id == job_id)
                .values(call_sid=call_sid, updated_at=now)
            )

    async def not_placed(
        self, job_id: int, detail: str, now: datetime, policy: CallbackPolicy
    ) -> Settled | None:
        """The carrier refused the call (an API error): an attempt that failed."""
        async with self.engine.begin() as conn:
            row = await _job(conn, callback_jobs.c.id == job_id)
            if row is None or row["state"] != JobState.DIALING.value:
                return None
            return await _settle(conn, row, Attempt.FAILED, now, policy, detail)

    async def facts(self, job_id: int) -> tuple[OwedCallFacts, str, str | None] | None:
        """What the call is about, the ticket's language, and the job's current call."""
        async with self.reads.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        callback_jobs.c.kind,
                        callback_jobs.c.desk,
                        callback_jobs.c.call_sid,
                        tickets.c.id,
                        tickets.c.number,
                        tickets.c.language,
                        tickets.c.specialty,
                    )
                    .join(tickets, tickets.c.id == callback_jobs.c.ticket_id)
                    .where(callback_jobs.c.id == job_id)
                )
            ).first()
            if row is None:
                return None
            message = await conn.scalar(
                select(recordings.c.url)
                .where(recordings.c.ticket_id == row.id)
                .where(recordings.c.kind == RecordingKind.VOICEMAIL.value)
                .order_by(recordings.c.id.desc())
                .limit(1)
            )
        owed = OwedCallFacts(
            kind=row.kind,
            ticket=row.number,
            desk=row.desk or row.specialty,
            message_url=str(message) if message else None,
        )
        return owed, str(row.language), row.call_sid

    async def note(self, job_id: int, call_sid: str, result: str, now: datetime) -> None:
        """What happened on the live call (heard, rated), read when the call ends."""
        async with self.engine.begin() as conn:
            await conn.execute(
                callback_jobs.update()
                .where(callback_jobs.c.id == job_id)
                .where(callback_jobs.c.call_sid == call_sid)
                .values(last_result=result, updated_at=now)
            )

    async def rate(self, job_id: int, call_sid: str, rating: str, now: datetime) -> str | None:
        """Keep the survey's answer on the ticket; its number, or None for a stale request."""
        async with self.engine.begin() as conn:
            row = await _job(conn, callback_jobs.c.id == job_id)
            if row is None or row["call_sid"] != call_sid:
                return None
            number = await conn.scalar(
                select(tickets.c.number).where(tickets.c.id == row["ticket_id"])
            )
            if row["last_result"] == "rated":
                return str(number)  # a retried webhook: rated once
            await conn.execute(
                tickets.update()
                .where(tickets.c.id == row["ticket_id"])
                .values(
                    satisfaction=rating,
                    satisfaction_at=now,
                    updated_at=now,
                    version=tickets.c.version + 1,
                )
            )
            await conn.run_sync(
                add_history,
                row["ticket_id"],
                now,
                f"survey: {rating}",
                {"rating": rating},
                actor=DISPATCHER,
            )
            await conn.execute(
                callback_jobs.update()
                .where(callback_jobs.c.id == job_id)
                .values(last_result="rated", updated_at=now)
            )
            return str(number)

    async def settle(
        self,
        call_sid: str,
        call_status: str,
        by_machine: bool,
        now: datetime,
        policy: CallbackPolicy,
    ) -> Settled | None:
        """The outbound call ended. None when it was settled before (a repeated callback)."""
        async with self.engine.begin() as conn:
            row = await _job(conn, callback_jobs.c.call_sid == call_sid)
            if row is None or row["state"] != JobState.DIALING.value:
                return None
            heard = row["last_result"] in ("heard", "rated")
            attempt = attempt_from(
                call_status,
                by_machine and not heard,
                row["kind"],
                rated=row["last_result"] == "rated",
            )
            return await _settle(conn, row, attempt, now, policy, call_status)

    async def jobs_of(self, ticket_number: str) -> list[dict[str, Any]]:
        async with self.reads.connect() as conn:
            rows = await conn.execute(
                select(callback_jobs)
                .join(tickets, tickets.c.id == callback_jobs.c.ticket_id)
                .where(tickets.c.number == ticket_number)
                .order_by(callback_jobs.c.id)
            )
            return [dict(r._mapping) for r in rows]

    async def counts(self) -> dict[tuple[str, str], int]:
        """Jobs by (kind, state), every pair present (0 when there is none)."""
        found = {(kind.value, state.value): 0 for kind in JobKind for state in JobState}
        async with self.reads.connect() as conn:
            rows = await conn.execute(
                select(callback_jobs.c.kind, callback_jobs.c.state, func.count()).group_by(
                    callback_jobs.c.kind, callback_jobs.c.state
                )
            )
            for kind, state, count in rows:
                if (str(kind), str(state)) in found:
                    found[str(kind), str(state)] = int(count)
        return found

    async def _recover_lost(
        self, conn: AsyncConnection, now: datetime, policy: CallbackPolicy
    ) -> None:
        """A claim whose call never reported back (a lost status callback, a crashed process)."""
        stale = await conn.execute(
            select(callback_jobs)
            .where(callback_jobs.c.state == JobState.DIALING.value)
            .where(callback_jobs.c.claimed_at < now - policy.lost_after)
        )
        for row in [dict(r._mapping) for r in stale]:
            await _settle(conn, row, Attempt.LOST, now, policy, "no status callback")


async def _job(conn: AsyncConnection, where: Any) -> dict[str, Any] | None:
    query = select(callback_jobs).where(where)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row is not None else None


async def _settle(
    conn: AsyncConnection,
    row: dict[str, Any],
    attempt: Attempt,
    now: datetime,
    policy: CallbackPolicy,
    detail: str,
) -> Settled:
    decision = after_attempt(attempt, row["attempts"], now, policy)
    if not decision.done:
        state = JobState.PENDING
    else:
        state = JobState.FAILED if decision.gave_up else JobState.DONE
    await conn.execute(
        callback_jobs.update()
        .where(callback_jobs.c.id == row["id"])
        .values(
            state=state.value,
            last_result=attempt.value,
            not_before=decision.retry_at or row["not_before"],
            updated_at=now,
        )
    )
    kind = JobKind(row["kind"])
    note = f"{kind.value} attempt {row['attempts']}: {attempt.value}"
    ticket = (
        await conn.execute(
            select(tickets.c.number, tickets.c.status, tickets.c.version).where(
                tickets.c.id == row["ticket_id"]
            )
        )
    ).one()
    status = TicketStatus(ticket.status)
    moved: TicketStatus | None = None
    if decision.gave_up and kind is JobKind.CALLBACK and status in CALL_PATH:
        moved = TicketStatus.CALLBACK_FAILED
        note += f"; gave up after {row['attempts']}: needs a person"
        await conn.execute(
            tickets.update()
            .where(tickets.c.id == row["ticket_id"])
            .values(status=moved.value, updated_at=now, version=ticket.version + 1)
        )
    await conn.run_sync(
        add_history,
        row["ticket_id"],
        now,
        note,
        {"job": row["id"], "attempt": attempt.value, "detail": detail[:200]},
        actor=DISPATCHER,
        from_status=status.value if moved else None,
        to_status=moved.value if moved else None,
    )
    return Settled(ticket.number, kind, attempt, state)
