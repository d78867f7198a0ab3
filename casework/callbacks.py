"""Calls the hotline owes: who gets one, which to place now, and what an attempt settles.

Pure: the dispatcher (hotline/callbacks) reads jobs from the database, asks `choose` which to
dial within the caps, and asks `after_attempt` what an attempt's result means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from casework.tickets import TicketStatus
from routing.hours import BusinessHours


class Attempt(StrEnum):
    """How one outbound call ended, as far as the job is concerned."""

    REACHED = "reached"  # a person heard the message (callback) or gave a rating (survey)
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    MACHINE = "machine"  # voicemail or fax answered: try again later
    UNRATED = "unrated"  # survey answered by a person who gave no rating
    LOST = "lost"  # no status callback arrived: the job's claim ran out


@dataclass(frozen=True)
class CallbackPolicy:
    max_in_flight: int = 4  # outbound calls live at once, all desks together
    per_desk: int = 1  # callbacks live at once per desk, so its queue is not flooded
    attempts: int = 3
    retry_after: timedelta = timedelta(minutes=30)
    ring_timeout_s: int = 30
    lost_after: timedelta = timedelta(minutes=30)
    # No call starts this close to closing time: its conversation would outlast the desks.
    stop_before_close: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class OwedCall:
    job_id: int
    kind: str  # "callback" | "survey"
    desk: str | None
    created_at: datetime


def may_dial(hours: BusinessHours, now: datetime, policy: CallbackPolicy) -> bool:
    """Only while the line is open, and not in its last minutes."""
    return hours.is_open(now) and hours.is_open(now + policy.stop_before_close)


def owes_callback(
    status: TicketStatus, callback_requested: bool, described: bool, answered: bool
) -> bool:
    """When a call ends: does the enterprise get called back?

    A voicemail (after hours, or "leave a message" from a queue) asked for it; a caller who
    described the matter and then hung up before anyone answered told us what it was about.
    Whether there is a number to call is asked where the job is made: a withheld caller is
    owed a call that nobody can place (`casework.phone`, `hotline.store.jobs.owe_call`).
    """
    if answered:
        return False
    if callback_requested or status is TicketStatus.VOICEMAIL:
        return True
    return described and status is TicketStatus.ABANDONED


def choose(
    pending: Sequence[OwedCall],
    live_total: int,
    live_by_desk: Mapping[str, int],
    policy: CallbackPolicy,
) -> list[OwedCall]:
    """Which pending calls to place now: callbacks before surveys, oldest first, within caps.

    Callbacks come first because the enterprise is waiting on its matter; a survey can wait.
    The per-desk cap applies to callbacks only: a survey does not join a desk's queue.
    """
    room = policy.max_in_flight - live_total
    chosen: list[OwedCall] = []
    per_desk = dict(live_by_desk)
    for owed in sorted(pending, key=lambda o: (o.kind != "callback", o.created_at, o.job_id)):
        if room <= 0:
            break
        if owed.kind == "callback" and owed.desk is not None:
            if per_desk.get(owed.desk, 0) >= policy.per_desk:
                continue
            per_desk[owed.desk] = per_desk.get(owed.desk, 0) + 1
        chosen.append(owed)
        room -= 1
    return chosen


def attempt_from(call_status: str, by_machine: bool, kind: str, rated: bool) -> Attempt:
    """The call's final status (completed, busy, no-answer, canceled, failed), whether a
    machine answered it, and whether the survey got its rating."""
    if by_machine:
        return Attempt.MACHINE
    match call_status:
        case "completed":
            if kind == "survey" and not rated:
                return Attempt.UNRATED
            return Attempt.REACHED
        case "busy":
            return Attempt.BUSY
        case "no-answer" | "canceled":
            return Attempt.NO_ANSWER
    return Attempt.FAILED


@dataclass(frozen=True)
class AfterAttempt:
    done: bool  # nothing more to do for this job
    gave_up: bool  # attempts exhausted: the ticket needs a person
    retry_at: datetime | None


def after_attempt(
    attempt: Attempt, attempts_made: int, now: datetime, policy: CallbackPolicy
) -> AfterAttempt:
    if attempt is Attempt.REACHED:
        return AfterAttempt(done=True, gave_up=False, retry_at=None)
    if attempts_made >= policy.attempts:
        return AfterAttempt(done=True, gave_up=True, retry_at=None)
    return AfterAttempt(done=False, gave_up=False, retry_at=now + policy.retry_after)
