"""The ticket store: one ticket per call, created idempotently, every change in its history."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Executable, Select, and_, bindparam, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework.actions import DONE, DUE_SOON, Caller, DueState, Role
from casework.calendar import WorkCalendar
from casework.callbacks import owes_callback
from casework.deadlines import due_at
from casework.tickets import (
    Channel,
    RecordingKind,
    TicketStatus,
    closes_on_call,
    next_status,
    status_at_call_end,
    ticket_number,
)
from hotline.store.engine import Transactions, reads
from hotline.store.history import add_history
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
from routing.tiers import AppealType, FeedbackTier

SYSTEM = "ivr"
# A caller still counted "in queue" after this long lost their status callback; stop counting.
STALE_QUEUE_AFTER = timedelta(hours=4)
MAX_PAGE = 200

P = ParamSpec("P")
R = TypeVar("R")

# The call path's statements, built once: building a statement on every call, and its cache
# key, cost more CPU than running it. (SQLite leaves out FOR UPDATE: its transactions began
# IMMEDIATE, see store/engine.py.)
_TICKET_OF_CALL = (
    select(tickets).where(tickets.c.call_sid == bindparam("call_sid")).with_for_update()
)
_TICKET_BY_ID = select(tickets).where(tickets.c.id == bindparam("ticket_id")).with_for_update()
_RETURNED_BY = select(callback_jobs.c.ticket_id).where(
    callback_jobs.c.call_sid == bindparam("call_sid")
)
_UPDATE_TICKET = tickets.update().where(tickets.c.id == bindparam("ticket_id"))
_ADD_TICKET = tickets.insert().returning(*tickets.c)
_ADD_RECORDING = recordings.insert()
_RECORDING = select(recordings.c.id).where(recordings.c.sid == bindparam("sid"))
_DESCRIBED = (
    select(func.count())
    .select_from(recordings)
    .where(recordings.c.ticket_id == bindparam("ticket_id"))
    .where(recordings.c.kind == RecordingKind.DESCRIPTION.value)
)
_JOIN_QUEUE = queue_members.insert()
# "member", not "call_sid": an update's parameter named after a column is a value to set.
_FORGET_MEMBER = queue_members.delete().where(queue_members.c.call_sid == bindparam("member"))
_IN_QUEUE = queue_members.c.call_sid == bindparam("member"), queue_members.c.left_at.is_(None)
_LEAVE_QUEUE = queue_members.update().where(*_IN_QUEUE)
_MARK_OVERDUE = queue_members.update().where(*_IN_QUEUE).where(queue_members.c.overdue.is_(False))
_WANTS_VOICEMAIL = select(tickets.c.wants_voicemail).where(
    tickets.c.call_sid == bindparam("call_sid")
)
_WAITING = (
    select(queue_members.c.queue, func.count())
    .where(queue_members.c.left_at.is_(None))
    .where(queue_members.c.queue.in_(bindparam("queues", expanding=True)))
    .where(queue_members.c.joined_at > bindparam("since"))
    .group_by(queue_members.c.queue)
)


def _by_dialect(
    build: Callable[[type[postgresql.Insert] | type[sqlite.Insert]], Executable],
) -> dict[str, Executable]:
    """One upsert statement for each dialect: their INSERT .. ON CONFLICT builders differ."""
    return {"postgresql": build(postgresql.Insert), "sqlite": build(sqlite.Insert)}


# "Note this key unless it is there": one statement, not a look and an insert.
_FIRST_TIME = _by_dialect(
    lambda insert: insert(ticket_operations).on_conflict_do_nothing(index_elements=["key"])
)
_NEXT_IN_DAY = _by_dialect(
    lambda insert: (
        insert(ticket_counters)
        .values(day=bindparam("day"), last=1)
        .on_conflict_do_update(
            index_elements=[ticket_counters.c.day], set_={"last": ticket_counters.c.last + 1}
        )
        .returning(ticket_counters.c.last)
    )
)


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
    viewer: Caller | None = None  # only the tickets this caller may see
    due: DueState | None = None  # only the tickets overdue, or due within 24 h, at `now`
    now: datetime | None = None


def due_condition(kind: DueState, now: datetime) -> ColumnElement[bool]:
    """Tickets in `kind` at `now`, as casework.actions.due_state decides it, in SQL."""
    owing = and_(
        tickets.c.due_at.is_not(None),
        tickets.c.responded_at.is_(None),
        tickets.c.status.not_in([s.value for s in DONE]),
    )
    if kind == "overdue":
        return and_(owing, tickets.c.due_at <= now)
    return and_(owing, tickets.c.due_at > now, tickets.c.due_at <= now + DUE_SOON)


def visible_to(caller: Caller) -> ColumnElement[bool]:
    """The tickets `caller` may see: a department its own, the centre and the system all."""
    if caller.role is Role.DEPARTMENT:
        return tickets.c.department == caller.department
    return true()


def _conditions(query: TicketQuery) -> list[ColumnElement[bool]]:
    found = []
    if query.viewer is not None:
        found.append(visible_to(query.viewer))
    if query.due is not None and query.now is not None:
        found.append(due_condition(query.due, query.now))
    return found


class TicketStore:
    """Tickets of calls. Each webhook's operation is one transaction (see `Transactions`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        zone: ZoneInfo,
        default_language: str,
        calendar: Callable[[], WorkCalendar] = WorkCalendar,
    ) -> None:
        """`calendar`: asked on every due date, so a reloaded holiday list counts at once."""
        self.engine = engine
        # For blocks that only read (on SQLite they never hold the write lock).
        self.reads = reads(engine)
        self._tx = Transactions(engine)
        self._zone = zone
        self._language = default_language
        self._calendar = calendar

    async def aclose(self) -> None:
        await self._tx.aclose()

    @property
    def transactions(self) -> Transactions:
        """This store's transactions, for another store's writes to share (SQLite's one
        writer)."""
        return self._tx

    async def ping(self) -> None:
        """One round trip to the database, for the health check."""
        async with self.reads.connect() as conn:
            await conn.execute(select(1))

    async def open(self, call: CallRef, at: datetime) -> str:
        """The call's ticket number, creating the ticket on first sight of the call."""
        number = await self.record(call, (), at, opening=True)
        assert number is not None
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
        if changes:
            await self.record(call, changes, at, key=key)

    async def record(
        self,
        call: CallRef,
        changes: Sequence[TicketChange],
        at: datetime,
        *,
        key: str | None = None,
        opening: bool = False,
    ) -> str | None:
        """A webhook's whole operation in one transaction: the call's ticket (created on first
        sight: the first webhook may have been lost), `changes` applied once under `key`;
        the ticket number."""
        if not changes and not opening:
            return None
        return await self._with_ticket(self._record_in, call, at, opening, changes, key)

    async def end_call(
        self,
        call: CallRef,
        call_status: str,
        duration_s: int | None,
        at: datetime,
        *,
        key: str | None = None,
    ) -> None:
        await self._with_ticket(self._end_in, call, at, False, call_status, duration_s, key)

    async def forget_operations(self, before: datetime) -> int:
        """Drop the keys of operations applied before `before`; how many went."""
        return await self._tx.run(_forget_operations, before)

    async def calls_per_hour(self, start: datetime, zone: ZoneInfo) -> list[int]:
        """New tickets in each local hour of the day that begins at `start`."""
        query = (
            select(tickets.c.created_at)
            .where(tickets.c.created_at >= start)
            .where(tickets.c.created_at < start + timedelta(days=1))
        )
        hours = [0] * 24
        async with self.reads.connect() as conn:
            for (created,) in (await conn.execute(query)).all():
                hours[created.astimezone(zone).hour] += 1
        return hours

    async def wants_voicemail(self, call_sid: str) -> bool:
        return await self._tx.run(_wants_voicemail, call_sid)

    async def waiting(self, queues: Sequence[str], now: datetime) -> dict[str, int]:
        """Callers waiting in each of `queues`, as the service's own queue view has them."""
        if not queues:
            return {}
        return await self._tx.run(_waiting, tuple(queues), now)

    async def get(self, number: str) -> dict[str, Any] | None:
        async with self.reads.connect() as conn:
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
        for condition in _conditions(query):
            base = base.where(condition)
        limit = max(1, min(query.limit, MAX_PAGE))
        async with self.reads.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(base.subquery()))
            rows = await conn.execute(
                base.order_by(tickets.c.id.desc()).limit(limit).offset(max(0, query.offset))
            )
            found = [_public(dict(r._mapping)) for r in rows]
        return found, int(total or 0)

    # -- internals ---------------------------------------------------------------------------

    async def _with_ticket(
        self,
        work: Callable[Concatenate[Connection, dict[str, Any], datetime, P], R],
        call: CallRef,
        at: datetime,
        opening: bool,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """`work` on the call's locked ticket row, in one transaction with its creation when
        the ticket is new (`opening`: it most likely is)."""
        sequence: int | None = None
        if opening and self._tx.dialect == "postgresql":
            # Look, and take the day's next number if there is no ticket, in one go rather
            # than a failed attempt and then one for the number. The day's counter is one
            # row that every new call updates: committed by its own statement, so new calls
            # do not queue behind each other's round trips.
            sequence = await self._tx.run_unlocked(
                _number_unless_known, call.call_sid, self._day(at)
            )
        for attempt in range(3):
            try:
                return await self._tx.run(
                    self._on_ticket, work, call, at, sequence, *args, **kwargs
                )
            except _NeedsNumber:
                # PostgreSQL: the counter is taken apart from the ticket's inserts, as
                # above. An insert that then fails leaves a gap in the day's numbers.
                sequence = await self._tx.run_unlocked(_next_sequence, self._day(at))
            except IntegrityError:
                # Another process created it between our look and our insert: use theirs.
                if attempt == 2:
                    raise
        raise RuntimeError(f"no ticket for {call.call_sid} after three attempts")

    def _on_ticket(
        self,
        conn: Connection,
        work: Callable[Concatenate[Connection, dict[str, Any], datetime, P], R],
        call: CallRef,
        at: datetime,
        sequence: int | None,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        row = _locked(conn, call.call_sid)
        if row is None:
            if sequence is None and conn.dialect.name == "postgresql":
                raise _NeedsNumber()
            row = {**self._create(conn, call, at, sequence), "this_call": call.call_sid}
        return work(conn, row, at, *args, **kwargs)

    def _record_in(
        self,
        conn: Connection,
        row: dict[str, Any],
        at: datetime,
        changes: Sequence[TicketChange],
        key: str | None,
    ) -> str:
        if changes and _first_time(conn, key, row["id"], at):
            for change in changes:
                row = self._apply_one(conn, row, change, at)
        return str(row["number"])

    def _end_in(
        self,
        conn: Connection,
        row: dict[str, Any],
        at: datetime,
        call_status: str,
        duration_s: int | None,
        key: str | None,
    ) -> None:
        if not _first_time(conn, key, row["id"], at) or row["call_ended_at"] is not None:
            return
        current = TicketStatus(row["status"])
        status = next_status(current, status_at_call_end(current), late=at < row["updated_at"])
        if row["status"] == TicketStatus.IN_QUEUE.value:
            # The status callback overtook the Enqueue action: the caller hung up.
            _leave_queue(conn, row["this_call"], "hangup", at)
        values = {
            "call_status": call_status,
            "call_duration_s": duration_s,
            "call_ended_at": at,
        }
        write_ticket(
            conn, row, values, status, f"call {call_status}", at, {"duration_s": duration_s}
        )
        described = conn.scalar(_DESCRIBED, {"ticket_id": row["id"]})
        owed = owes_callback(
            status,
            bool(row["callback_requested"]),
            bool(described),
            answered=row["answered_by"] is not None or status is TicketStatus.ANSWERED,
        )
        if owed:
            _owe_callback(conn, row, "call", at)

    def _day(self, at: datetime) -> str:
        return at.astimezone(self._zone).date().strftime("%Y%m%d")

    def _create(
        self, conn: Connection, call: CallRef, at: datetime, sequence: int | None = None
    ) -> dict[str, Any]:
        """The new ticket's row, as a look at it would give."""
        day = at.astimezone(self._zone).date()
        if sequence is None:
            sequence = _next_sequence(conn, self._day(at))
        number = ticket_number(day, sequence)
        result = conn.execute(
            _ADD_TICKET,
            {
                "number": number,
                "call_sid": call.call_sid,
                "caller": call.caller,
                "called": call.called,
                "language": self._language,
                "menu_path": [],
                "channel": Channel.CALL.value,
                "appeal_type": AppealType.UNKNOWN.value,
                "status": TicketStatus.NEW.value,
                "callback_requested": False,
                "wants_voicemail": False,
                "created_at": at,
                "updated_at": at,
                "version": 1,
            },
        )
        row = dict(result.one()._mapping)
        new = TicketStatus.NEW.value
        add_history(conn, row["id"], at, "call received", {}, actor=SYSTEM, to_status=new)
        return row

    def _apply_one(
        self, conn: Connection, row: dict[str, Any], change: TicketChange, at: datetime
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
            known = conn.scalar(_RECORDING, {"sid": recording.sid})
            if known is None:
                conn.execute(
                    _ADD_RECORDING,
                    {
                        "ticket_id": row["id"],
                        "kind": kind.value,
                        "sid": recording.sid,
                        "url": recording.url,
                        "duration_s": recording.duration_s,
                        "at": at,
                    },
                )
                detail["recording"] = {
                    "kind": kind.value,
                    "sid": recording.sid,
                    "duration_s": recording.duration_s,
                }
        current = TicketStatus(row["status"])
        status = next_status(current, change.status or current, late=at < row["updated_at"])
        if closes_on_call(values.get("feedback_tier", row["feedback_tier"]), values.get("outcome")):
            status = TicketStatus.CLOSED
        if change.outcome == Outcome.CALLBACK.value and row["outcome"] != change.outcome:
            _owe_callback(conn, row, "agent", at)
        if change.overdue and _mark_overdue(conn, row["this_call"]):
            detail["overdue"] = True
        if not detail and status.value == row["status"]:
            return row  # a retried webhook: nothing new to record
        _track_queue(conn, row, change, status, at)
        return write_ticket(conn, row, values, status, change.note, at, detail)


class _NeedsNumber(Exception):
    """A new ticket on PostgreSQL: take the day's next number first, in its own transaction."""


def _track_queue(
    conn: Connection,
    row: dict[str, Any],
    change: TicketChange,
    status: TicketStatus,
    at: datetime,
) -> None:
    """Keep the service's view of who waits where in step with the ticket."""
    if status is TicketStatus.IN_QUEUE and change.queue and row["status"] != status.value:
        conn.execute(_FORGET_MEMBER, {"member": row["this_call"]})
        conn.execute(
            _JOIN_QUEUE,
            {
                "call_sid": row["this_call"],
                "ticket_id": row["id"],
                "desk": change.queue_desk or row["specialty"] or "",
                "queue": change.queue,
                # A call the hotline placed to return one: served before first callers.
                "callback": row["this_call"] != row["call_sid"],
                "overdue": False,
                "joined_at": at,
            },
        )
    elif row["status"] == TicketStatus.IN_QUEUE.value and status is not TicketStatus.IN_QUEUE:
        result = change.queue_result.value if change.queue_result else status.value
        _leave_queue(conn, row["this_call"], result, at)


def _owe_callback(conn: Connection, row: dict[str, Any], reason: str, at: datetime) -> None:
    owe_call(
        conn,
        ticket_id=row["id"],
        kind=JobKind.CALLBACK,
        desk=row["specialty"],
        not_before=at,  # the dispatcher waits for the line to open
        dedupe=f"callback:{row['id']}:{reason}",
        at=at,
    )


def _next_sequence(conn: Connection, day: str) -> int:
    return int(conn.execute(_NEXT_IN_DAY[conn.dialect.name], {"day": day}).scalar_one())


def _number_unless_known(conn: Connection, call_sid: str, day: str) -> int | None:
    """The day's next number for a new ticket; None when the call has one already."""
    if _locked(conn, call_sid) is not None:
        return None
    return _next_sequence(conn, day)


def _locked(conn: Connection, call_sid: str) -> dict[str, Any] | None:
    """The ticket of a call: the one it opened, or the one a callback call returns.

    `this_call` is the call whose webhook this is: the queue view follows that call.
    SQLite: the transaction began IMMEDIATE (store/engine.py), which locks the database.
    """
    row = conn.execute(_TICKET_OF_CALL, {"call_sid": call_sid}).first()
    if row is None:
        ticket_id = conn.scalar(_RETURNED_BY, {"call_sid": call_sid})
        if ticket_id is None:
            return None
        row = conn.execute(_TICKET_BY_ID, {"ticket_id": ticket_id}).first()
        if row is None:
            return None
    return {**row._mapping, "this_call": call_sid}


def _forget_operations(conn: Connection, before: datetime) -> int:
    gone = conn.execute(ticket_operations.delete().where(ticket_operations.c.at < before))
    return int(gone.rowcount or 0)


def _wants_voicemail(conn: Connection, call_sid: str) -> bool:
    return bool(conn.scalar(_WANTS_VOICEMAIL, {"call_sid": call_sid}))


def _waiting(conn: Connection, queues: tuple[str, ...], now: datetime) -> dict[str, int]:
    rows = conn.execute(_WAITING, {"queues": list(queues), "since": now - STALE_QUEUE_AFTER})
    return {str(queue): int(count) for queue, count in rows.all()}


def write_ticket(
    conn: Connection,
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
    values = {
        **values,
        "status": status.value,
        # A late change (see next_status) is recorded, but does not turn the clock back.
        "updated_at": max(at, row["updated_at"]),
        "version": row["version"] + 1,
    }
    conn.execute(_UPDATE_TICKET, {**values, "ticket_id": row["id"]})
    moved = previous != status.value
    add_history(
        conn,
        row["id"],
        at,
        note,
        detail,
        actor=actor,
        from_status=previous if moved else None,
        to_status=status.value if moved else None,
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


def _first_time(conn: Connection, key: str | None, ticket_id: int, at: datetime) -> bool:
    """Note `key` as applied, in the change's own transaction; False if it already was.

    Asked with the ticket's row locked (PostgreSQL) or the write lock held (SQLite), so two
    attempts of one operation are serialised and the second finds the first's key.
    """
    if key is None:
        return True
    noted = conn.execute(
        _FIRST_TIME[conn.dialect.name], {"key": key, "ticket_id": ticket_id, "at": at}
    )
    return bool(noted.rowcount)


def _mark_overdue(conn: Connection, call_sid: str) -> bool:
    marked = conn.execute(_MARK_OVERDUE, {"member": call_sid, "overdue": True})
    return bool(marked.rowcount)


def _leave_queue(conn: Connection, call_sid: str, result: str, at: datetime) -> None:
    conn.execute(_LEAVE_QUEUE, {"member": call_sid, "left_at": at, "result": result})


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
