"""Automatic call distribution: which waiting caller an agent who is ready gets next.

The service keeps its own view of who waits where and chooses the caller; the edge then
takes exactly that caller out of the carrier's queue, by name, for the agent (a queue's
front is first in, first out: not the service's order). This module is the choice, over
plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DeskLevel(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


class AgentState(StrEnum):
    OFFLINE = "offline"
    READY = "ready"
    ON_CALL = "on-call"
    WRAP_UP = "wrap-up"
    AWAY = "away"


class Outcome(StrEnum):
    """What became of the caller's matter, keyed by the agent in wrap-up."""

    ANSWERED = "answered-on-call"  # closes an instant-tier ticket
    FORWARDED = "forwarded"  # to the responsible department
    CALLBACK = "needs-callback"


@dataclass(frozen=True)
class Agent:
    id: str  # digits: keyed on the phone
    name: str
    answers_on: str  # a phone number, or client:<identity>
    pin_hash: str
    desks: Mapping[str, DeskLevel]


@dataclass(frozen=True)
class Waiting:
    """A caller in one of the desks' queues, as the service's own view has them."""

    call_sid: str
    desk: str  # the specialty whose queue this is
    queue: str
    joined_at: datetime
    callback: bool = False  # a returned call: served before first-time callers
    overdue: bool = False  # waited past the desk's maximum with none of its agents ready


def next_caller(agent: Agent, waiting: Sequence[Waiting]) -> Waiting | None:
    """Primary desks before backup desks; within them callbacks first, then the longest
    waiting caller. A caller overdue at a backup desk counts as at a primary one: nobody
    of their own desk was free for too long (overflow by time)."""
    eligible = [w for w in waiting if w.desk in agent.desks]
    if not eligible:
        return None

    def rank(w: Waiting) -> tuple[bool, bool, datetime]:
        backup = agent.desks[w.desk] is not DeskLevel.PRIMARY and not w.overdue
        return (backup, not w.callback, w.joined_at)

    return min(eligible, key=rank)
