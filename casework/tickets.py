"""What a ticket is in the call path: its statuses, channels, queue results and number."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

from routing.acd import Outcome
from routing.tiers import FeedbackTier


class TicketStatus(StrEnum):
    NEW = "new"
    ROUTED = "routed"
    IN_QUEUE = "in-queue"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    VOICEMAIL = "voicemail"
    # After the call, the department's handling (casework/actions.py):
    ACCEPTED = "accepted"
    RESPONDED = "responded"
    RESOLVED = "resolved"
    RETURNED = "returned"  # sent back to the centre for reassignment
    REASSIGNED = "reassigned"
    REOPENED = "reopened"
    CALLBACK_FAILED = "callback-failed"  # callbacks exhausted: manual follow-up
    CLOSED = "closed"


class Satisfaction(StrEnum):
    """The enterprise's answer to the satisfaction survey."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically-satisfied"
    DISSATISFIED = "dissatisfied"


class Channel(StrEnum):
    CALL = "call"
    VOICEMAIL = "voicemail"


class RecordingKind(StrEnum):
    VOICEMAIL = "voicemail"
    DESCRIPTION = "description"


# A caller who hangs up before being answered or leaving a message abandoned the call.
_UNFINISHED = {TicketStatus.NEW, TicketStatus.ROUTED, TicketStatus.IN_QUEUE}


def status_at_call_end(current: TicketStatus) -> TicketStatus:
    return TicketStatus.ABANDONED if current in _UNFINISHED else current


def ticket_number(day: date, sequence: int) -> str:
    """`E20261130-000123`: E for enterprise, the local date, the day's sequence."""
    return f"E{day:%Y%m%d}-{sequence:06d}"


_TICKET_NUMBER = re.compile(r"E[0-9]{8}-[0-9]{6,12}")


def is_ticket_number(text: str) -> bool:
    """Whether `text` has the shape of a `ticket_number` (the only numbers tickets have)."""
    return _TICKET_NUMBER.fullmatch(text) is not None


def closes_on_call(tier: str | None, outcome: str | None) -> bool:
    """An instant-tier matter answered on the call needs nothing more: its ticket closes."""
    return tier == FeedbackTier.INSTANT and outcome == Outcome.ANSWERED


# Statuses the call path may set; once a ticket is past them, its handling owns the status.
CALL_PATH = frozenset(
    {
        TicketStatus.NEW,
        TicketStatus.ROUTED,
        TicketStatus.IN_QUEUE,
        TicketStatus.ANSWERED,
        TicketStatus.ABANDONED,
        TicketStatus.VOICEMAIL,
    }
)


def next_status(
    current: TicketStatus, proposed: TicketStatus, *, late: bool = False
) -> TicketStatus:
    """A call's webhooks move its ticket only while the ticket is still in the call path.

    A late status callback must not undo a department's work, nor reopen a closed ticket.
    A callback call for a ticket in handling (say `reopened`) leaves its status alone too.

    `late`: the change happened before the ticket's last one. It waited in one process's
    spool while the call's next webhooks went to another process and were written first.
    It does not move the status back, with one exception: the status callback took a caller
    still in the queue for one who hung up, and this change says an agent took the call.
    """
    if current not in CALL_PATH:
        return current
    if late:
        answered_after_all = current is TicketStatus.ABANDONED and proposed is TicketStatus.ANSWERED
        return proposed if answered_after_all else current
    return proposed
