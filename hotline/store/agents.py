"""Agents' states and the next caller for an agent, shared by every server process."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotline.store.engine import Transactions, in_transaction, reads
from hotline.store.tables import (
    agent_events,
    agent_states,
    agents,
    pin_failures,
    queue_members,
    tickets,
)
from hotline.store.tickets import STALE_QUEUE_AFTER
from routing.acd import Agent, AgentState, DeskLevel, Waiting, next_caller
from routing.queue_stats import QueueStay

CLAIM_ATTEMPTS = 5
# Queue ids this process has noted, by call (a caller's hold webhooks come every round).
NOTED_KEPT = 4096
GONE = "gone"  # claimed for no agent: the carrier no longer had the caller in the queue


@dataclass(frozen=True)
class Claimed:
    """A caller an agent is about to be connected to, with what the whisper says."""

    call_sid: str
    desk: str
    ticket: str
    transcript: str | None
    joined_at: datetime


@dataclass(frozen=True)
class AgentStatus:
    agent_id: str
    state: AgentState
    since: datetime
    call_sid: str | None  # the agent's own call
    caller_sid: str | None


class AgentStore:
    def __init__(self, engine: AsyncEngine, *, transactions: Transactions | None = None) -> None:
        self.engine = engine
        # For blocks that only read (on SQLite they never hold the write lock).
        self.reads = reads(engine)
        # The ticket store's transactions, for the writes of the hold rounds: on SQLite its
        # writer thread is the one writer, so these do not fight the ticket writes for it.
        self._tx = transactions
        self._noted: OrderedDict[str, str] = OrderedDict()

    async def directory(self, configured: Mapping[str, Agent]) -> dict[str, Agent]:
        """Every agent: those of agents.yaml, and those added through the ops API."""
        async with self.reads.connect() as conn:
            rows = (await conn.execute(select(agents))).all()
        found = {
            r.id: Agent(
                r.id,
                r.name,
                r.answers_on,
                r.pin_hash,
                {desk: DeskLevel(level) for desk, level in r.desks.items()},
            )
            for r in rows
        }
        return {**found, **configured}  # the YAML is the reference where both name one

    async def save_agent(self, agent: Agent, at: datetime) -> None:
        values = {
            "name": agent.name,
            "answers_on": agent.answers_on,
            "pin_hash": agent.pin_hash,
            "updated_at": at,
            "desks": {d: level.value for d, level in agent.desks.items()},
        }
        async with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            await conn.execute(
                insert(agents)
                .values(id=agent.id, **values)
                .on_conflict_do_update(index_elements=[agents.c.id], set_=values)
            )

    async def delete_agent(self, agent_id: str) -> bool:
        async with self.engine.begin() as conn:
            deleted = await conn.execute(agents.delete().where(agents.c.id == agent_id))
        return bool(deleted.rowcount)

    async def set_state(
        self,
        agent_id: str,
        state: AgentState,
        at: datetime,
        note: str,
        *,
        call_sid: str | None = None,
        caller_sid: str | None = None,
    ) -> None:
        """Record a state change (and its history entry); the same state again is a no-op."""
        async with self.engine.begin() as conn:
            current = (
                await conn.execute(select(agent_states).where(agent_states.c.agent_id == agent_id))
            ).first()
            if (
                current is not None
                and current.state == state.value
                and (current.caller_sid == caller_sid)
            ):
                return
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            values = {
                "state": state.value,
                "since": at,
                "call_sid": call_sid,
                "caller_sid": caller_sid,
            }
            await conn.execute(
                insert(agent_states)
                .values(agent_id=agent_id, **values)
                .on_conflict_do_update(index_elements=[agent_states.c.agent_id], set_=values)
            )
            await conn.execute(
                agent_events.insert().values(
                    agent_id=agent_id,
                    at=at,
                    from_state=current.state if current is not None else None,
                    to_state=state.value,
                    note=note,
                )
            )

    async def states(self) -> dict[str, AgentStatus]:
        async with self.reads.connect() as conn:
            rows = (await conn.execute(select(agent_states))).all()
        return {
            r.agent_id: AgentStatus(
                r.agent_id, AgentState(r.state), r.since, r.call_sid, r.caller_sid
            )
            for r in rows
        }

    async def ready_count(self, desk: str, staffing: Mapping[str, Agent]) -> int:
        """Agents ready now whose primary desk `desk` is."""
        states = await self.states()
        return sum(
            1
            for agent in staffing.values()
            if agent.desks.get(desk) is DeskLevel.PRIMARY
            and (status := states.get(agent.id)) is not None
            and status.state is AgentState.READY
        )

    async def claim_next(self, agent: Agent, now: datetime) -> Claimed | None:
        """Take the caller this agent should get next, so that no other agent takes them.

        Optimistic: read who waits, choose (routing.acd), then claim with a conditional
        update; if another process claimed that caller first, choose again.
        """
        for _ in range(CLAIM_ATTEMPTS):
            async with self.engine.begin() as conn:
                waiting = await self._waiting(conn, list(agent.desks), now)
                choice = next_caller(agent, list(waiting))
                if choice is None:
                    return None
                claimed = await conn.execute(
                    queue_members.update()
                    .where(queue_members.c.call_sid == choice.call_sid)
                    .where(queue_members.c.claimed_by.is_(None))
                    .where(queue_members.c.left_at.is_(None))
                    .values(claimed_by=agent.id, claimed_at=now)
                )
                if claimed.rowcount == 1:
                    return waiting[choice]
        return None

    def noted(self, call_sid: str, queue_sid: str) -> bool:
        """Whether this process has noted this queue id of the call already."""
        return self._noted.get(call_sid) == queue_sid

    async def note_queue(self, call_sid: str, queue_sid: str, *, new_stay: bool = True) -> bool:
        """Keep the carrier's id of the queue `call_sid` waits in: at the first hold round
        of each stay (`new_stay`), and later only until this process has noted it (False: no
        such caller waiting yet, e.g. its join is still in a spool)."""
        if not new_stay and self.noted(call_sid, queue_sid):
            return True
        if not await in_transaction(self._tx, self.engine, _note_queue_sid, call_sid, queue_sid):
            return False
        self._noted[call_sid] = queue_sid
        while len(self._noted) > NOTED_KEPT:
            self._noted.popitem(last=False)
        return True

    async def claimed_queue(self, agent_id: str, call_sid: str) -> str | None:
        """The queue id of `call_sid` while `agent_id` holds its claim and it waits; else None."""
        async with self.reads.connect() as conn:
            found = await conn.scalar(
                select(queue_members.c.queue_sid)
                .where(queue_members.c.call_sid == call_sid)
                .where(queue_members.c.claimed_by == agent_id)
                .where(queue_members.c.left_at.is_(None))
            )
        return str(found) if found else None

    async def gone(self, call_sid: str, at: datetime) -> None:
        """The carrier no longer had this caller in the queue (hung up, or left): no agent
        is offered the caller again. The stay itself, and how it ended (a hang-up counts as
        abandoned), is closed by the caller's own webhooks, as every stay is."""
        await in_transaction(self._tx, self.engine, _claim_for_none, call_sid, at)

    async def pin_attempt(
        self, agent_id: str, caller: str, at: datetime, *, since: datetime
    ) -> tuple[int, list[datetime], list[datetime]]:
        """Note a PIN attempt as a failure before it is checked, then read the failures
        since `since` that still count, this one left out: those keyed for this agent id,
        and those from this number (whatever id they keyed). The attempt's id, to forget it
        if the PIN was right (`forget_pin_attempt`).

        Noted first and committed on its own: of any number of attempts at once, each sees
        at least those noted before it, so no burst of calls gets more PINs checked than
        the lockout allows. Failures too old to matter go.
        """
        async with self.engine.begin() as conn:
            await conn.execute(pin_failures.delete().where(pin_failures.c.at < since))
            noted = await conn.execute(
                pin_failures.insert()
                .values(agent_id=agent_id, caller=caller, at=at)
                .returning(pin_failures.c.id)
            )
            attempt = int(noted.scalar_one())
        others = (
            select(pin_failures.c.at)
            .where(pin_failures.c.at >= since)
            .where(pin_failures.c.id != attempt)
        )
        of_agent = others.where(pin_failures.c.agent_id == agent_id)
        of_caller = others.where(pin_failures.c.caller == caller)
        async with self.reads.connect() as conn:
            by_agent = await conn.scalars(of_agent.where(pin_failures.c.agent_lifted.is_(False)))
            by_caller = await conn.scalars(of_caller.where(pin_failures.c.caller_lifted.is_(False)))
            return attempt, list(by_agent), list(by_caller)

    async def forget_pin_attempt(self, attempt: int) -> None:
        """The PIN was right: that attempt was no failure."""
        async with self.engine.begin() as conn:
            await conn.execute(pin_failures.delete().where(pin_failures.c.id == attempt))

    async def lift_lockout(self, agent_id: str, own_number: str | None) -> int:
        """A supervisor lifts an agent's lockout: the wrong PINs keyed for this agent id no
        longer count against it, nor those from the agent's own number against that number
        (an intruder's number stays locked). How many failures were lifted."""
        async with self.engine.begin() as conn:
            lifted = await conn.execute(
                pin_failures.update()
                .where(pin_failures.c.agent_id == agent_id)
                .where(pin_failures.c.agent_lifted.is_(False))
                .values(agent_lifted=True)
            )
            if own_number:
                await conn.execute(
                    pin_failures.update()
                    .where(pin_failures.c.caller == own_number)
                    .values(caller_lifted=True)
                )
        return int(lifted.rowcount or 0)

    async def release(self, agent_id: str) -> None:
        """Give back callers this agent claimed but was not connected to."""
        async with self.engine.begin() as conn:
            await conn.execute(
                queue_members.update()
                .where(queue_members.c.claimed_by == agent_id)
                .where(queue_members.c.left_at.is_(None))
                .values(claimed_by=None, claimed_at=None)
            )

    async def waiting_now(self, now: datetime) -> list[dict[str, Any]]:
        """Everyone waiting, for the live view."""
        async with self.reads.connect() as conn:
            rows = (
                await conn.execute(
                    select(queue_members)
                    .where(queue_members.c.left_at.is_(None))
                    .where(queue_members.c.joined_at > now - STALE_QUEUE_AFTER)
                )
            ).all()
        return [dict(r._mapping) for r in rows]

    async def stays_since(self, start: datetime) -> list[QueueStay]:
        """Every queue stay that began since `start`, for the day's desk metrics."""
        query = (
            select(queue_members, tickets.c.answered_at, tickets.c.wrapped_at)
            .join(tickets, tickets.c.id == queue_members.c.ticket_id)
            .where(queue_members.c.joined_at >= start)
        )
        async with self.reads.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            QueueStay(
                r.desk,
                r.joined_at,
                r.left_at,
                r.result,
                r.answered_at if r.result == "bridged" or r.left_at is None else None,
                r.wrapped_at,
            )
            for r in rows
        ]

    async def _waiting(
        self, conn: AsyncConnection, desks: list[str], now: datetime
    ) -> Mapping[Waiting, Claimed]:
        rows = (
            await conn.execute(
                select(queue_members, tickets.c.number, tickets.c.transcript)
                .join(tickets, tickets.c.id == queue_members.c.ticket_id)
                .where(queue_members.c.left_at.is_(None))
                .where(queue_members.c.claimed_by.is_(None))
                .where(queue_members.c.desk.in_(desks))
                .where(queue_members.c.joined_at > now - STALE_QUEUE_AFTER)
                # Only a caller the carrier reported in its queue can be taken out of it.
                .where(queue_members.c.queue_sid.is_not(None))
            )
        ).all()
        return {
            Waiting(r.call_sid, r.desk, r.queue, r.joined_at, r.callback, r.overdue): Claimed(
                r.call_sid, r.desk, r.number, r.transcript, r.joined_at
            )
            for r in rows
        }


def _note_queue_sid(conn: Connection, call_sid: str, queue_sid: str) -> bool:
    noted = conn.execute(
        queue_members.update()
        .where(queue_members.c.call_sid == call_sid)
        .where(queue_members.c.left_at.is_(None))
        .values(queue_sid=queue_sid)
    )
    return noted.rowcount == 1


def _claim_for_none(conn: Connection, call_sid: str, at: datetime) -> None:
    conn.execute(
        queue_members.update()
        .where(queue_members.c.call_sid == call_sid)
        .where(queue_members.c.left_at.is_(None))
        .values(claimed_by=GONE, claimed_at=at)
    )
