"""What happens to a call, as the flow sees it (the edge turns webhooks into these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from routing.tickets import QueueResult, RecordingKind


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


@dataclass(frozen=True)
class QueueKeyPressed:
    digits: str


@dataclass(frozen=True)
class QueueLeft:
    result: QueueResult
    wants_voicemail: bool = False


Event = (
    CallStarted
    | KeyPressed
    | NoInput
    | Recorded
    | RecordingMissing
    | RoutingRequested
    | QueueWaiting
    | QueueKeyPressed
    | QueueLeft
)
