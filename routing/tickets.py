"""What a ticket is in the call path: its statuses, channels, queue results and number."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class TicketStatus(StrEnum):
    NEW = "new"
    ROUTED = "routed"
    IN_QUEUE = "in-queue"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    VOICEMAIL = "voicemail"
    CLOSED = "closed"


class Channel(StrEnum):
    CALL = "call"
    VOICEMAIL = "voicemail"


class QueueResult(StrEnum):
    """Twilio's QueueResult values, and what the hotline makes of them."""

    BRIDGED = "bridged"
    BRIDGING = "bridging-in-process"
    HANGUP = "hangup"
    LEAVE = "leave"
    QUEUE_FULL = "queue-full"
    REDIRECTED = "redirected"
    ERROR = "error"
    SYSTEM_ERROR = "system-error"

    @classmethod
    def parse(cls, raw: str) -> QueueResult:
        try:
            return cls(raw)
        except ValueError:
            return cls.ERROR


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


def closes_on_call(tier: str | None, outcome: str | None) -> bool:
    """An instant-tier matter answered on the call needs nothing more: its ticket closes."""
    return tier == "instant" and outcome == "answered-on-call"


def next_status(current: TicketStatus, proposed: TicketStatus) -> TicketStatus:
    """A closed ticket stays closed whatever a late webhook of its call says."""
    return current if current is TicketStatus.CLOSED else proposed
