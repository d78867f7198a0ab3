"""The ticket store: one ticket per call, created idempotently, every change in its history."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotline.store.jobs import JobKind, owe_call
from hotline.store.tables import (
    callback_jobs,
    queue_members,
    recordings,
    ticket_counters,
    ticket_history,
    ticket_operations,
    tickets,
)
from ivr.actions import TicketChange
from routing.acd import Outcome
from routing.calendar import WorkCalendar
from routing.callbacks import diallable, owes_callback
from routing.tickets import (
    Channel,
    RecordingKind,
    TicketStatus,
    closes_on_call,
    next_status,
    status_at_call_end,
    ticket_number,
)
from routing.tiers import AppealType, FeedbackTier, due_at

SYSTEM = "ivr"
# A caller still counted "in queue" after this long lost their status callback; stop counting.
STALE_QUEUE_AFTER = timedelta(hours=4)
MAX_PAGE = 200


@dataclass(frozen=True)
class CallRef:
    """Who is calling, as the carrier reported it."""

    call_sid: str
    caller: str
    called: str


@dataclass(frozen=True)
class TicketQuery:
    status: str | None = None
    specialty: str | None = None
    call_sid: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 50
    offset: int = 0
    department: str | None = None
    # Further conditions, e.g. the due filters of store/casework.py.
    where: tuple[ColumnElement[bool], ...] = ()


class TicketStore:
    def __init__(
        self,
        engine: AsyncEngine,
        zone: ZoneInfo,
        default_language: str,
        calendar: Callable[[], WorkCalendar] = WorkCalendar,
    ) -> None:
        """`calendar`: asked on every due date, so a reloaded holiday list counts at once."""
        self.engine = engine
        self._zone = zone
        self._language = default_language
        self._calendar = calendar

    async def open(self, call: CallRef, at: datetime) -> str:
        """The call's ticket number, creating the ticket on first sight of the CallSid."""
        async with self.engine.begin() as conn:
            number = await self._number_of(conn, call.call_sid)
            if number is not None:
                return number
        try:
            sequence = None
            if self.engine.dialect.name == "postgresql":
                # The day's counter is one row that every new call updates. In a transaction
                # of its own it stays locked for one statement, not for the ticket's inserts
                # too (round trips on a busy event loop), so new calls do not queue behind
                # each other. An insert that then fails leaves a gap in the day's numbers.
                async with self.engine.begin() as conn:
                    sequence = await self._next_sequence(conn, self._day(at))
            async with self.engine.begin() as conn:
                return await self._create(conn, call, at, sequence)
        except IntegrityError:
            # Another process created it between our look and our insert: use theirs.
            async with self.engine.begin() as conn:
                number = await self._number_of(conn, call.call_sid)
            if number is None:
                raise
            return number

    async def apply(
        self,
        call: CallRef,
        changes: Sequence[TicketChange],
        at: datetime,
        *,
        key: str | None = None,
    ) -> None:
        """Record what the call flow decided; a retried webhook changes nothing twice.

        `key` names this operation (the webhook's idempotency token): one already applied is
        skipped whole, so a retry or a replay from the spool is applied exactly once.
        """
        if not changes:
            return
        for _ in range(2):
            async with self.engine.begin() as conn:
                row = await self._locked(conn, call.call_sid)
                if row is not None:
                    if not await _first_time(conn, key, row["id"], at):
                        return
                    for change in changes:
                        row = await self._apply_one(conn, row, change, at)
                    return
            # First sight of this call here (its first webhook was lost, say): open it.
            await self.open(call, at)

    async def end_call(
        self,
        call: CallRef,
        call_status: str,
        duration_s: int | None,
        at: datetime,
        *,
        key: str | None = None,
    ) -> None:
        for _ in range(2):
            async with self.engine.begin() as conn:
                row = await self._locked(conn, call.call_sid)
                if row is not None:
                    if await _first_time(conn, key, row["id"], at):
                        await self._end(conn, row, call_status, duration_s, at)
                    return
            await self.open(call, at)

    async def forget_operations(self, before: datetime) -> int:
        """Drop the keys of operations applied before `before`; how many went."""
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                ticket_operations.delete().where(ticket_operations.c.at < before)
            )
        return int(gone.rowcount or 0)

    async def wants_voicemail(self, call_sid: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(tickets.c.wants_voicemail).where(tickets.c.call_sid == call_sid)
            )
        return bool(found)

    async def waiting(self, queues: Sequence[str], now: datetime) -> dict[str, int]:
        """Callers waiting in each of `queues`, as the service's own queue view has them."""
        if not queues:
            return {}
        query = (
            select(queue_members.c.queue, func.count())
            .where(queue_members.c.left_at.is_(None))
            .where(queue_members.c.queue.in_(list(queues)))
            .where(queue_members.c.joined_at > now - STALE_QUEUE_AFTER)
            .group_by(queue_members.c.queue)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {str(queue): int(count) for queue, count in rows}

    async def get(self, number: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            return await ticket_view(conn, number)

    async def search(self, query: TicketQuery) -> tuple[list[dict[str, Any]], int]:
        base: Select[Any] = select(tickets)
        if query.status:
            base = base.where(tickets.c.status == query.status)
        if query.specialty:
            base = base.where(tickets.c.specialty == query.specialty)
        if query.call_sid:
            base = base.where(tickets.c.call_sid == query.call_sid)
        if query.created_from:
            base = base.where(tickets.c.created_at >= query.created_from)
        if query.created_to:
            base = base.where(tickets.c.created_at < query.created_to)
        if query.department:
            base = base.where(tickets.c.department == query.department)
        for condition in query.where:
            base = base.where(condition)
        limit = max(1, min(query.limit, MAX_PAGE))
        async with self.engine.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(base.subquery()))
            rows = await conn.execute(
                base.order_by(tickets.c.id.desc()).limit(limit).offset(max(0, query.offset))
            )
            found = [_public(dict(r._mapping)) for r in rows]
        return found, int(total or 0)

    # -- internals ---------------------------------------------------------------------------

    async def _end(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        call_status: str,
        duration_s: int | None,
        at: datetime,
    ) -> None:
        if row["call_ended_at"] is not None:
            return
        status = next_status(
            TicketStatus(row["status"]), status_at_call_end(TicketStatus(row["status"]))
        )
        if row["status"] == TicketStatus.IN_QUEUE.value:
            # The status callback overtook the Enqueue action: the caller hung up.
            await _leave_queue(conn, row["this_call"], "hangup", at)
        values = {
            "call_status": call_status,
            "call_duration_s": duration_s,
            "call_ended_at": at,
        }
        await write_ticket(
            conn, row, values, status, f"call {call_status}", at, {"duration_s": duration_s}
        )
        described = await conn.scalar(
            select(func.count())
            .select_from(recordings)
            .where(recordings.c.ticket_id == row["id"])
            .where(recordings.c.kind == RecordingKind.DESCRIPTION.value)
        )
        owed = owes_callback(
            status,
            bool(row["callback_requested"]),
            bool(described),
            answered=row["answered_by"] is not None or status is TicketStatus.ANSWERED,
        )
        if owed:
            await self._owe_callback(conn, row, "call", at)

    async def _owe_callback(
        self, conn: AsyncConnection, row: dict[str, Any], reason: str, at: datetime
    ) -> None:
        if not diallable(row["caller"]):
            await conn.execute(
                ticket_history.insert().values(
                    ticket_id=row["id"],
                    at=at,
                    actor=SYSTEM,
                    note="callback owed, but the caller's number cannot be dialled",
                    detail={"reason": reason},
                )
            )
            return
        await owe_call(
            conn,
            ticket_id=row["id"],
            kind=JobKind.CALLBACK,
            desk=row["specialty"],
            not_before=at,  # the dispatcher waits for the line to open
            dedupe=f"callback:{row['id']}:{reason}",
            at=at,
        )

    async def _number_of(self, conn: AsyncConnection, call_sid: str) -> str | None:
        found = await conn.scalar(select(tickets.c.number).where(tickets.c.call_sid == call_sid))
        return str(found) if found is not None else None

    def _day(self, at: datetime) -> str:
        return at.astimezone(self._zone).date().strftime("%Y%m%d")

    async def _create(
        self, conn: AsyncConnection, call: CallRef, at: datetime, sequence: int | None = None
    ) -> str:
        day = at.astimezone(self._zone).date()
        if sequence is None:
            sequence = await self._next_sequence(conn, self._day(at))
        number = ticket_number(day, sequence)
        result = await conn.execute(
            tickets.insert().values(
                number=number,
                call_sid=call.call_sid,
                caller=call.caller,
                called=call.called,
                language=self._language,
                menu_path=[],
                channel=Channel.CALL.value,
                appeal_type=AppealType.UNKNOWN.value,
                status=TicketStatus.NEW.value,
                callback_requested=False,
                wants_voicemail=False,
                created_at=at,
                updated_at=at,
                version=1,
            )
        )
        ticket_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        await conn.execute(
            ticket_history.insert().values(
                ticket_id=ticket_id,
                at=at,
                actor=SYSTEM,
                from_status=None,
                to_status=TicketStatus.NEW.value,
                note="call received",
                detail={},
            )
        )
        return number

    async def _next_sequence(self, conn: AsyncConnection, day: str) -> int:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        upsert = (
            insert(ticket_counters)
            .values(day=day, last=1)
            .on_conflict_do_update(
                index_elements=[ticket_counters.c.day],
                set_={"last": ticket_counters.c.last + 1},
            )
            .returning(ticket_counters.c.last)
        )
        return int((await conn.execute(upsert)).scalar_one())

    async def _locked(self, conn: AsyncConnection, call_sid: str) -> dict[str, Any] | None:
        """The ticket of a call: the one it opened, or the one a callback call returns.

        `this_call` is the call whose webhook this is: the queue view follows that call.
        """
        query = select(tickets).where(tickets.c.call_sid == call_sid)
        returned = select(callback_jobs.c.ticket_id).where(callback_jobs.c.call_sid == call_sid)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            ticket_id = await conn.scalar(returned)
            if ticket_id is None:
                return None
            query = select(tickets).where(tickets.c.id == ticket_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = (await conn.execute(query)).first()
            if row is None:
                return None
        return {**row._mapping, "this_call": call_sid}

    async def _apply_one(
        self, conn: AsyncConnection, row: dict[str, Any], change: TicketChange, at: datetime
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        fields: Mapping[str, Any] = {
            "language": change.language,
            "menu_path": list(change.menu_path) if change.menu_path is not None else None,
            "specialty": change.specialty,
            "department": change.department,
            "queue": change.queue,
            "channel": change.channel.value if change.channel else None,
            "callback_requested": change.callback,
            "wants_voicemail": change.wants_voicemail,
            "queue_result": change.queue_result.value if change.queue_result else None,
            "appeal_type": change.appeal.value if change.appeal else None,
            "answered_by": change.answered_by,
            "outcome": change.outcome,
        }
        for name, value in fields.items():
            if value is not None and row[name] != value:
                values[name] = value
        if change.answered_by is not None and row["answered_at"] is None:
            values["answered_at"] = at
        if change.wrapped and row["wrapped_at"] is None:
            values["wrapped_at"] = at
        if change.tier is not None and row["feedback_tier"] != change.tier.value:
            values["feedback_tier"] = change.tier.value
            values["due_at"] = due_at(
                row["created_at"], FeedbackTier(change.tier), self._zone, self._calendar()
            )
        understood = _classification(row["classification"], change)
        if understood != row["classification"]:
            values["classification"] = understood
        if change.understanding is not None and change.understanding.transcript:
            values["transcript"] = change.understanding.transcript
        detail: dict[str, Any] = {
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in values.items()
            if k != "due_at"
        }
        if change.recording is not None:
            kind, recording = change.recording
            known = await conn.scalar(
                select(recordings.c.id).where(recordings.c.sid == recording.sid)
            )
            if known is None:
                await conn.execute(
                    recordings.insert().values(
                        ticket_id=row["id"],
                        kind=kind.value,
                        sid=recording.sid,
                        url=recording.url,
                        duration_s=recording.duration_s,
                        at=at,
                    )
                )
                detail["recording"] = {
                    "kind": kind.value,
                    "sid": recording.sid,
                    "duration_s": recording.duration_s,
                }
        status = next_status(
            TicketStatus(row["status"]), change.status or TicketStatus(row["status"])
        )
        if closes_on_call(values.get("feedback_tier", row["feedback_tier"]), values.get("outcome")):
            status = TicketStatus.CLOSED
        if change.outcome == Outcome.CALLBACK.value and row["outcome"] != change.outcome:
            await self._owe_callback(conn, row, "agent", at)
        if change.overdue and await _mark_overdue(conn, row["this_call"]):
            detail["overdue"] = True
        if not detail and status.value == row["status"]:
            return row  # a retried webhook: nothing new to record
        await self._track_queue(conn, row, change, status, at)
        return await write_ticket(conn, row, values, status, change.note, at, detail)

    async def _track_queue(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        change: TicketChange,
        status: TicketStatus,
        at: datetime,
    ) -> None:
        """Keep the service's view of who waits where in step with the ticket."""
        if status is TicketStatus.IN_QUEUE and change.queue and row["status"] != status.value:
            await conn.execute(
                queue_members.delete().where(queue_members.c.call_sid == row["this_call"])
            )
            await conn.execute(
                queue_members.insert().values(
                    call_sid=row["this_call"],
                    ticket_id=row["id"],
                    desk=change.queue_desk or row["specialty"] or "",
                    queue=change.queue,
                    # A call the hotline placed to return one: served before first callers.
                    callback=row["this_call"] != row["call_sid"],
                    overdue=False,
                    joined_at=at,
                )
            )
        elif row["status"] == TicketStatus.IN_QUEUE.value and status is not TicketStatus.IN_QUEUE:
            result = change.queue_result.value if change.queue_result else status.value
            await _leave_queue(conn, row["this_call"], result, at)


async def write_ticket(
    conn: AsyncConnection,
    row: Mapping[str, Any],
    values: Mapping[str, Any],
    status: TicketStatus,
    note: str,
    at: datetime,
    detail: Mapping[str, Any],
    actor: str = SYSTEM,
) -> dict[str, Any]:
    """One change of a locked ticket row: its fields, its status, a new version, and the
    history entry that says who did it."""
    previous = row["status"]
    values = {**values, "status": status.value, "updated_at": at, "version": row["version"] + 1}
    await conn.execute(tickets.update().where(tickets.c.id == row["id"]).values(**values))
    await conn.execute(
        ticket_history.insert().values(
            ticket_id=row["id"],
            at=at,
            actor=actor,
            from_status=previous if previous != status.value else None,
            to_status=status.value if previous != status.value else None,
            note=note,
            detail=dict(detail),
        )
    )
    return {**row, **values}


async def ticket_view(conn: AsyncConnection, number: str) -> dict[str, Any] | None:
    """A ticket as the ops API shows it, with its history and recordings."""
    row = (await conn.execute(select(tickets).where(tickets.c.number == number))).first()
    if row is None:
        return None
    ticket = _public(dict(row._mapping))
    history = await conn.execute(
        select(ticket_history)
        .where(ticket_history.c.ticket_id == row.id)
        .order_by(ticket_history.c.id)
    )
    ticket["history"] = [
        {
            "at": h.at.isoformat(),
            "actor": h.actor,
            "from_status": h.from_status,
            "to_status": h.to_status,
            "note": h.note,
            "detail": h.detail,
        }
        for h in history
    ]
    recs = await conn.execute(
        select(recordings).where(recordings.c.ticket_id == row.id).order_by(recordings.c.id)
    )
    ticket["recordings"] = [
        {
            "kind": r.kind,
            "sid": r.sid,
            "url": r.url,
            "duration_s": r.duration_s,
            "at": r.at.isoformat(),
        }
        for r in recs
    ]
    return ticket


async def _first_time(conn: AsyncConnection, key: str | None, ticket_id: int, at: datetime) -> bool:
    """Note `key` as applied, in the change's own transaction; False if it already was.

    Asked with the ticket's row locked (PostgreSQL) or the write lock held (SQLite), so two
    attempts of one operation are serialised and the second finds the first's key.
    """
    if key is None:
        return True
    known = await conn.scalar(select(ticket_operations.c.key).where(ticket_operations.c.key == key))
    if known is not None:
        return False
    await conn.execute(ticket_operations.insert().values(key=key, ticket_id=ticket_id, at=at))
    return True


async def _mark_overdue(conn: AsyncConnection, call_sid: str) -> bool:
    marked = await conn.execute(
        queue_members.update()
        .where(queue_members.c.call_sid == call_sid)
        .where(queue_members.c.left_at.is_(None))
        .where(queue_members.c.overdue.is_(False))
        .values(overdue=True)
    )
    return bool(marked.rowcount)


async def _leave_queue(conn: AsyncConnection, call_sid: str, result: str, at: datetime) -> None:
    await conn.execute(
        queue_members.update()
        .where(queue_members.c.call_sid == call_sid)
        .where(queue_members.c.left_at.is_(None))
        .values(left_at=at, result=result)
    )


def _classification(current: Any, change: TicketChange) -> Any:
    """The ticket's record of understanding, with this change's news merged in."""
    merged = dict(current) if isinstance(current, dict) else None
    if change.understanding is not None:
        u = change.understanding
        merged = {
            "candidates": [[desk, round(score, 3)] for desk, score in u.candidates],
            "appeal": u.appeal.value,
            "problem": u.problem,
            "attempts": (merged or {}).get("attempts", 0) + 1,
        }
    if change.choice is not None:
        merged = {**(merged or {}), "choice": change.choice}
    return merged


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket as the ops API shows it."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("id", "wants_voicemail"):  # version: for If-Match on ticket actions
            continue
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out
