"""What happens to a call, as the flow sees it (the edge turns webhooks into these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from casework.tickets import RecordingKind
from routing.queue_router import QueueExit
from routing.tiers import AppealType


@dataclass(frozen=True)
class Recording:
    url: str
    sid: str
    duration_s: int


@dataclass(frozen=True)
class CallStarted:
    at: datetime


@dataclass(frozen=True)
class KeyPressed:
    digits: str


@dataclass(frozen=True)
class NoInput:
    pass


@dataclass(frozen=True)
class Recorded:
    kind: RecordingKind
    recording: Recording


@dataclass(frozen=True)
class Understanding:
    """What the caller's own words were taken to mean (or why they could not be)."""

    transcript: str
    candidates: tuple[tuple[str, float], ...]  # desks, best first, scores 0..1
    appeal: AppealType = AppealType.UNKNOWN
    problem: str | None = None  # a stable id: speech-timeout, corrupt-audio, ...


@dataclass(frozen=True)
class Described:
    """The caller described the matter: the recording, and what was understood of it."""

    recording: Recording
    understanding: Understanding


@dataclass(frozen=True)
class ConfirmAnswered:
    """After "this sounds like a matter for X": a key (no) or nothing (yes)."""

    digits: str


@dataclass(frozen=True)
class ChoiceAnswered:
    """After "for X press 1, for Y press 2, for the menu press 3"."""

    digits: str


@dataclass(frozen=True)
class RecordingMissing:
    """A recording webhook came without a usable recording."""

    kind: RecordingKind


@dataclass(frozen=True)
class RoutingRequested:
    # Callers waiting per queue name, as far as the ticket store knows.
    waiting: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueWaiting:
    position: int
    avg_wait_s: int
    waited_s: int = 0  # this caller's time in the queue so far
    agents_ready: int | None = None  # ready agents whose primary desk this is (None: unknown)


@dataclass(frozen=True)
class QueueKeyPressed:
    digits: str


@dataclass(frozen=True)
class QueueLeft:
    result: QueueExit
    wants_voicemail: bool = False


Event = (
    CallStarted
    | KeyPressed
    | NoInput
    | Recorded
    | Described
    | ConfirmAnswered
    | ChoiceAnswered
    | RecordingMissing
    | RoutingRequested
    | QueueWaiting
    | QueueKeyPressed
    | QueueLeft
)
