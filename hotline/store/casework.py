"""The departments' handling of tickets: each action in one transaction, on a locked row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework.actions import (
    Caller,
    CaseAction,
    DueState,
    InvalidInput,
    check_input,
    next_status,
)
from casework.calendar import WorkCalendar
from casework.tickets import TicketStatus
from hotline.store.engine import reads
from hotline.store.jobs import JobKind, owe_call
from hotline.store.tables import ticket_history, tickets
from hotline.store.tickets import due_condition, ticket_view, write_ticket

log = structlog.get_logger("hotline.casework")

DUE_EVENTS: dict[DueState, str] = {"overdue": "ticket_overdue", "24h": "ticket_due_soon"}
# A ticket warned at a level is not warned again at it, nor at a lower one.
_WARNED_ABOVE: dict[DueState, tuple[str, ...]] = {
    "overdue": ("overdue",),
    "24h": ("24h", "overdue"),
}


class TicketNotFound(LookupError):
    """No such ticket, or not one the caller may see (which the caller is not told)."""


class VersionConflict(Exception):
    def __init__(self, number: str, expected: int, current: int) -> None:
        super().__init__(
            f"ticket {number} is at version {current}, not {expected}: "
            "it changed since it was read; read it again"
        )
        self.current = current


class CaseStore:
    def __init__(
        self,
        engine: AsyncEngine,
        zone: ZoneInfo,
        calendar: Callable[[], WorkCalendar] = WorkCalendar,
    ) -> None:
        """`calendar`: how extension days are counted, asked each time (config reloads)."""
        self.engine = engine
        # For blocks that only read (on SQLite they never hold the write lock).
        self.reads = reads(engine)
        self._zone = zone
        self._calendar = calendar

    async def act(
        self,
        number: str,
        action: CaseAction,
        caller: Caller,
        *,
        text: str | None = None,
        department: str | None = None,
        days: int | None = None,
        district: str | None = None,
        expected_version: int | None = None,
        at: datetime,
    ) -> dict[str, Any]:
        """Take `action` on the ticket and return the ticket as it is now.

        Raises TicketNotFound, VersionConflict, IllegalAction (ActionForbidden for a role
        that may not take it) or InvalidInput; nothing is written then.
        """
        check_input(action, text=text, department=department, days=days, district=district)
        async with self.engine.begin() as conn:
            row = await _locked(conn, number)
            if row is None or not caller.may_see(row["department"]):
                raise TicketNotFound(number)
            if expected_version is not None and expected_version != row["version"]:
                raise VersionConflict(number, expected_version, row["version"])
            current = TicketStatus(row["status"])
            status = next_status(current, action, caller.role, extension=row["extension"])
            values = self._values(row, action, caller, text, department, days, district, at)
            given = {"text": text, "department": department, "days": days, "district": district}
            detail: dict[str, Any] = {
                "action": action.value,
                **{k: v for k, v in given.items() if v is not None},
            }
            if action is CaseAction.APPROVE_EXTENSION:
                detail["due_at"] = values["due_at"].isoformat()
            if action is CaseAction.RESOLVE:
                await self._owe_survey(conn, row, at)
            await conn.run_sync(
                write_ticket, row, values, status, action.value, at, detail, actor=caller.actor
            )
            ticket = await ticket_view(conn, number)
        assert ticket is not None
        log.info(
            "ticket_action",
            ticket=number,
            action=action.value,
            actor=caller.actor,
            from_status=current.value,
            to_status=status.value,
        )
        return ticket

    async def due(
        self, kind: DueState, now: datetime, department: str | None = None
    ) -> list[dict[str, Any]]:
        """Open tickets past their deadline ('overdue') or within 24 h of it ('24h')."""
        query = select(tickets.c.number).where(due_condition(kind, now))
        if department is not None:
            query = query.where(tickets.c.department == department)
        async with self.reads.connect() as conn:
            numbers = (await conn.scalars(query.order_by(tickets.c.due_at, tickets.c.id))).all()
            found = [await ticket_view(conn, n) for n in numbers]
        return [t for t in found if t is not None]

    async def warn_due(self, now: datetime) -> list[tuple[DueState, str]]:
        """Log each ticket once as due soon and once as overdue; returns what it logged.

        The mark and the check are one UPDATE: of several processes sweeping at once, one
        marks (and logs) a ticket, the others find it marked.
        """
        warned: list[tuple[DueState, str]] = []
        levels: tuple[DueState, ...] = ("overdue", "24h")
        for level in levels:
            mark = (
                tickets.update()
                .where(due_condition(level, now))
                .where(
                    or_(
                        tickets.c.due_warned.is_(None),
                        tickets.c.due_warned.not_in(_WARNED_ABOVE[level]),
                    )
                )
                .values(due_warned=level)
                .returning(tickets.c.number, tickets.c.department, tickets.c.due_at)
            )
            async with self.engine.begin() as conn:
                rows = (await conn.execute(mark)).all()
            for number, department, due_at in sorted(rows, key=lambda r: (r[2], r[0])):
                log.warning(
                    DUE_EVENTS[level],
                    number=number,
                    department=department,
                    due_at=due_at.isoformat(),
                )
                warned.append((level, number))
        return warned

    # -- internals ---------------------------------------------------------------------------

    def _values(
        self,
        row: dict[str, Any],
        action: CaseAction,
        caller: Caller,
        text: str | None,
        department: str | None,
        days: int | None,
        district: str | None,
        at: datetime,
    ) -> dict[str, Any]:
        """The columns an action writes (besides status, updated_at and version)."""
        match action:
            case CaseAction.ACCEPT:
                return {"accepted_at": at}
            case CaseAction.RESPOND:
                first = {"responded_at": at} if row["responded_at"] is None else {}
                return {**first, "response": text}
            case CaseAction.RESOLVE:
                return {"resolved_at": at, "resolution": text}
            case CaseAction.REASSIGN:
                if department == row["department"]:
                    raise InvalidInput(f"the ticket is already with {department}")
                return {"department": department}
            case CaseAction.EXTEND:
                asked = {
                    "days": days,
                    "reason": text,
                    "requested_by": caller.actor,
                    "requested_at": at.isoformat(),
                }
                return {"extension": asked}
            case CaseAction.APPROVE_EXTENSION:
                extension = dict(row["extension"])
                due = self._extended(row["due_at"] or at, int(extension["days"]))
                extension.update(
                    approved_by=caller.actor,
                    approved_at=at.isoformat(),
                    due_before=row["due_at"].isoformat() if row["due_at"] else None,
                    due_after=due.isoformat(),
                )
                # A new deadline earns new warnings.
                return {"extension": extension, "due_at": due, "due_warned": None}
            case CaseAction.CLOSE:
                return {"closed_at": at}
            case CaseAction.REOPEN:
                return {"closed_at": None, "resolved_at": None}
            case CaseAction.SET_DISTRICT:
                return {"district": district}
            case CaseAction.RETURN:
                return {}

    def _extended(self, due: datetime, days: int) -> datetime:
        """`days` more (counted as tiers.yaml counts them), to the end of the local day."""
        last_day = (due.astimezone(self._zone) - timedelta(microseconds=1)).date()
        new_last = self._calendar().add_days(last_day, days)
        end = datetime.combine(new_last + timedelta(days=1), time(0, 0), tzinfo=self._zone)
        return end.astimezone(due.tzinfo)

    async def _owe_survey(self, conn: AsyncConnection, row: dict[str, Any], at: datetime) -> None:
        """Each resolution is surveyed: a ticket resolved again is asked again."""
        before = await conn.scalar(
            select(func.count())
            .select_from(ticket_history)
            .where(ticket_history.c.ticket_id == row["id"])
            .where(ticket_history.c.to_status == TicketStatus.RESOLVED.value)
        )
        n = int(before or 0) + 1
        await conn.run_sync(
            owe_call,
            ticket_id=row["id"],
            kind=JobKind.SURVEY,
            desk=row["specialty"],
            not_before=at,
            dedupe=f"survey:{row['id']}:{n}",
            at=at,
        )


async def _locked(conn: AsyncConnection, number: str) -> dict[str, Any] | None:
    # SQLite: the transaction began IMMEDIATE (store/engine.py), which locks the database.
    query = select(tickets).where(tickets.c.number == number)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row is not None else None
