"""The one write port of tickets (`TicketWrites`): every change to a ticket goes through it.

The call path's writes never hold up or lose a call.

Each webhook's ticket operation goes to the database within a time budget; when the database
is unreachable or too slow, it goes to the local spool instead (store/spool.py) and the
caller is routed as usual. The replayer puts spooled operations into the database, in order,
once it answers again. Every operation carries an idempotency key, recorded in the ticket
store in the same transaction as the change, so an operation that did reach the database
before it was spooled (an answer lost on the way back) is not applied twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import exc as sa_exc

from casework.actions import Caller, CaseAction, DueState, IllegalAction
from casework.callbacks import CallbackPolicy
from casework.tickets import Satisfaction
from hotline.store.casework import CaseStore, TicketNotFound
from hotline.store.jobs import ClaimedCall, JobStore, Settled
from hotline.store.spool import OpKind, Spool, SpooledOp
from hotline.store.tickets import CallRef, TicketStore
from ivr.actions import TicketChange

log = structlog.get_logger("hotline.spool")

T = TypeVar("T")
# Who reopens a ticket when its survey says "dissatisfied".
SURVEY = Caller.system("survey")

MAX_KEY = 200
# Keys of applied operations are kept this long: a spool replayed later than this (a dead
# machine's file, recovered a week on) could apply an operation twice.
KEEP_KEYS = timedelta(days=7)
PRUNE_EVERY = timedelta(days=1)
# PostgreSQL SQLSTATE classes of an unavailable server, not of a wrong statement:
# 08 connection exception, 53 insufficient resources, 57 operator intervention (57014 is
# the statement timeout, 57P01 an administrator's shutdown).
_UNAVAILABLE_SQLSTATE = ("08", "53", "57")
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "unable to open database",
    "disk i/o error",
    "database or disk is full",
)


def unreachable(error: BaseException) -> bool:
    """The database is away or too slow (spool and retry), as opposed to a bug (raise)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError | sa_exc.TimeoutError):
            return True  # refused, reset, connect or pool timeout, our own budget
        if isinstance(current, sa_exc.InterfaceError):
            return True  # the driver lost its connection
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE:
            return True
        if isinstance(current, sqlite3.OperationalError):
            return str(current).lower().startswith(_SQLITE_UNAVAILABLE)
        current = current.__cause__ or current.__context__
    return False


def operation_key(call_sid: str, token: str) -> str:
    """The idempotency key of a webhook's ticket operation."""
    key = f"{call_sid}:{token}"
    if len(key) <= MAX_KEY:
        return key
    return f"{call_sid}:{hashlib.sha256(token.encode()).hexdigest()}"


class Budget:
    """Waits on the database that end on time, whatever the database does.

    `asyncio.timeout` alone is not enough: a cancelled query's rollback waits on the same
    stalled connection. The work runs as its own task; when time is up the caller moves on
    and the task is left to finish or fail in the background (a write that lands late is
    then skipped on replay by its key).
    """

    def __init__(self, write_s: float, read_s: float) -> None:
        self.write_s = write_s
        self.read_s = read_s
        self._lingering: set[asyncio.Task[Any]] = set()

    async def within(self, seconds: float, work: Awaitable[T]) -> T:
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        try:
            # asyncio.wait, not wait_for: on 3.11 wait_for can swallow the caller's own
            # cancellation when the work finishes at that moment, and a task that ignores
            # its cancel never stops (seen: a replayer that kept a shutdown waiting).
            done, _ = await asyncio.wait({task}, timeout=seconds)
        except asyncio.CancelledError:
            self._linger(task)
            raise
        if task in done:
            return task.result()
        self._linger(task)
        raise TimeoutError(f"no answer within {seconds} s")

    def beside(self, work: Awaitable[Any]) -> None:
        """`work` runs beside the answer, which does not wait for it; kept until it ends
        (or `close`), its failure logged as a late write's."""
        self._linger(asyncio.ensure_future(work))

    def _linger(self, task: asyncio.Task[Any]) -> None:
        if not task.done():
            self._lingering.add(task)
            task.add_done_callback(self._forget)

    async def read(self, work: Awaitable[T]) -> T:
        return await self.within(self.read_s, work)

    async def close(self) -> None:
        for task in list(self._lingering):
            task.cancel()
        await asyncio.gather(*self._lingering, return_exceptions=True)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._lingering.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("late_write_failed", error=repr(task.exception()))


@dataclass
class ReplayResult:
    applied: int = 0
    set_aside: int = 0
    stalled: bool = False  # stopped because the database is still away
    errors: list[str] = field(default_factory=list)


class TicketWrites:
    """Every writer's way to the tickets: the webhooks' (the database, or failing that the
    spool), and the casework's and the placed calls' (in the database now, their answer
    is awaited)."""

    def __init__(
        self,
        store: TicketStore,
        spool: Spool,
        budget: Budget,
        clock: Callable[[], datetime],
        *,
        cases: CaseStore | None = None,
        jobs: JobStore | None = None,
        replay_timeout_s: float = 10.0,
        ready: bool = True,
    ) -> None:
        self.store = store
        self._cases = cases
        self._jobs = jobs
        self.spool = spool
        self.budget = budget
        self._clock = clock
        self._replay_timeout_s = replay_timeout_s
        self._replaying = asyncio.Lock()
        # False while the schema could not be checked (the process started with its database
        # away): every write goes to the spool and nothing is replayed until it is.
        self.ready = ready

    @classmethod
    def open(
        cls,
        store: TicketStore,
        spool_path: Path,
        clock: Callable[[], datetime],
        *,
        write_s: float,
        read_s: float,
        cases: CaseStore | None = None,
        jobs: JobStore | None = None,
        ready: bool = True,
    ) -> TicketWrites:
        """Ticket writes through the spool file at `spool_path` (left-overs are replayed);
        `ready`: whether the database's schema is known to be up to date."""
        spool = Spool(spool_path)
        if spool.depth():
            log.warning("spool_left_over", path=str(spool_path), depth=spool.depth())
        return cls(
            store, spool, Budget(write_s, read_s), clock, cases=cases, jobs=jobs, ready=ready
        )

    async def close(self) -> None:
        await self.budget.close()
        self.spool.close()

    async def record(
        self,
        call: CallRef,
        changes: Sequence[TicketChange],
        at: datetime,
        *,
        key: str,
        opening: bool = False,
    ) -> str | None:
        """A webhook's changes (and the new ticket, `opening`); the ticket number if known."""
        if not changes and not opening:
            return None
        op = SpooledOp(key, OpKind.RECORD, call, at, tuple(changes), opening=opening)
        return await self._write(op)

    async def end_call(
        self, call: CallRef, call_status: str, duration_s: int | None, at: datetime, *, key: str
    ) -> None:
        op = SpooledOp(key, OpKind.END, call, at, call_status=call_status, duration_s=duration_s)
        await self._write(op)

    # The writes of people and of the calls the hotline places. Their answer is awaited (a
    # rule may refuse them), so they go to the database now and are never spooled: while
    # it is away they fail, and the API answers 503.

    async def set_outcome(self, call: CallRef, change: TicketChange, at: datetime) -> None:
        """An outcome given outside the call (the ops API), on the ticket of `call`."""
        await self.store.apply(call, [change], at)

    async def act(
        self,
        number: str,
        action: CaseAction,
        caller: Caller,
        *,
        at: datetime,
        text: str | None = None,
        department: str | None = None,
        days: int | None = None,
        district: str | None = None,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """A department's, the centre's or the system's action on a ticket (see CaseStore)."""
        return await self._casework().act(
            number,
            action,
            caller,
            text=text,
            department=department,
            days=days,
            district=district,
            expected_version=expected_version,
            at=at,
        )

    async def warn_due(self, now: datetime) -> list[tuple[DueState, str]]:
        return await self._casework().warn_due(now)

    async def claim_calls(
        self, now: datetime, policy: CallbackPolicy, owner: str
    ) -> list[ClaimedCall]:
        return await self._placed_calls().claim(now, policy, owner)

    async def call_placed(self, job: int, call_sid: str, at: datetime) -> None:
        await self._placed_calls().placed(job, call_sid, at)

    async def call_not_placed(
        self, job: int, error: str, at: datetime, policy: CallbackPolicy
    ) -> Settled | None:
        return await self._placed_calls().not_placed(job, error, at, policy)

    async def call_heard(self, job: int, call_sid: str, at: datetime) -> None:
        await self._placed_calls().note(job, call_sid, "heard", at)

    async def survey_rated(
        self, job: int, call_sid: str, rating: Satisfaction, at: datetime
    ) -> str | None:
        """The enterprise's rating on its ticket; the hotline's rule: a dissatisfied
        enterprise's matter goes back to the department. The ticket's number, if known."""
        number = await self._placed_calls().rate(job, call_sid, rating.value, at)
        if number is not None and rating is Satisfaction.DISSATISFIED:
            try:
                await self.act(
                    number,
                    CaseAction.REOPEN,
                    SURVEY,
                    text="dissatisfied with the handling (satisfaction survey)",
                    at=at,
                )
            except (IllegalAction, TicketNotFound) as exc:
                # Reopened already (a retried webhook), or closed in a way that cannot reopen.
                log.info("survey_reopen_skipped", ticket=number, reason=str(exc))
        return number

    async def placed_call_ended(
        self,
        call_sid: str,
        call_status: str,
        by_machine: bool,
        at: datetime,
        policy: CallbackPolicy,
    ) -> Settled | None:
        """A placed call's end settles its job once, however often the news comes."""
        return await self._placed_calls().settle(call_sid, call_status, by_machine, at, policy)

    def _casework(self) -> CaseStore:
        if self._cases is None:
            raise RuntimeError("this port was opened without the casework store")
        return self._cases

    def _placed_calls(self) -> JobStore:
        if self._jobs is None:
            raise RuntimeError("this port was opened without the job store")
        return self._jobs

    async def _write(self, op: SpooledOp) -> str | None:
        if not self.ready:
            self._spool(op, "schema-not-checked")
            return None
        if self.spool.holds(op.call.call_sid):
            # Never ahead of an earlier write of the same call still in the spool.
            self._spool(op, "earlier-writes-spooled")
            return None
        try:
            return await self.budget.within(self.budget.write_s, self._perform(op))
        except Exception as error:
            if not unreachable(error):
                raise
            self._spool(op, _reason(error))
            return None

    def _spool(self, op: SpooledOp, reason: str) -> None:
        added = self.spool.append(op, self._clock())
        log.warning(
            "ticket_spooled",
            call_sid=op.call.call_sid,
            kind=op.kind.value,
            changes=[c.note for c in op.changes],
            reason=reason,
            depth=self.spool.depth(),
            retried=not added,
        )

    async def _perform(self, op: SpooledOp) -> str | None:
        match op.kind:
            case OpKind.RECORD:
                return await self.store.record(
                    op.call, op.changes, op.at, key=op.key, opening=op.opening
                )
            case OpKind.END:
                assert op.call_status is not None
                await self.store.end_call(op.call, op.call_status, op.duration_s, op.at, key=op.key)
                return None

    async def replay(self, batch: int = 100) -> ReplayResult:
        """Apply the spooled operations in order until none is left or the database fails."""
        result = ReplayResult()
        async with self._replaying:
            while ops := self.spool.pending(batch):
                for op in ops:
                    try:
                        await self.budget.within(self._replay_timeout_s, self._perform(op))
                    except Exception as error:
                        if unreachable(error):
                            result.stalled = True
                            return result
                        self.spool.set_aside(op, repr(error))
                        result.set_aside += 1
                        result.errors.append(f"{op.key}: {error!r}")
                        log.exception("spool_op_set_aside", call_sid=op.call.call_sid, key=op.key)
                        continue
                    self.spool.done(op)
                    result.applied += 1
        return result

    async def run(self, every_s: float) -> None:
        """The replayer: every `every_s`, replay what is spooled; prune old keys now and then."""
        pruned_at: datetime | None = None
        while True:
            try:
                if self.spool.depth() and self.ready:
                    result = await self.replay()
                    if result.applied or result.set_aside:
                        log.info(
                            "spool_replayed",
                            applied=result.applied,
                            set_aside=result.set_aside,
                            depth=self.spool.depth(),
                        )
                now = self._clock()
                due = pruned_at is None or now - pruned_at > PRUNE_EVERY
                if self.ready and not self.spool.depth() and due:
                    await self.budget.within(
                        self._replay_timeout_s, self.store.forget_operations(now - KEEP_KEYS)
                    )
                    pruned_at = now
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not unreachable(error):
                    log.exception("spool_replayer_failed")
            await asyncio.sleep(every_s)


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    return type(error).__name__


async def replay_file(
    path: Path, store: TicketStore, clock: Callable[[], datetime], *, timeout_s: float = 30.0
) -> tuple[ReplayResult, int]:
    """`hotline spool replay`: put a spool file (a dead machine's, say) into the database once;
    the result and the operations still left."""
    spool = Spool(path)
    durable = TicketWrites(store, spool, Budget(timeout_s, timeout_s), clock)
    try:
        result = await durable.replay()
        return result, spool.depth()
    finally:
        await durable.close()
