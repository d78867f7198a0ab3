"""What the flow asks for: verbs the caller hears, and changes the ticket records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from casework.tickets import Channel, RecordingKind, TicketStatus
from ivr.events import Recording, Understanding
from ivr.state import AgentCallState, CallState, OutboundState
from routing.queue_router import QueueExit
from routing.tiers import AppealType, FeedbackTier


class Hook(StrEnum):
    """The webhook a verb sends its result to; the edge maps each to a URL."""

    MENU = "menu"
    NO_INPUT = "no-input"
    DESCRIBED = "described"
    ROUTE = "route"
    QUEUE_WAIT = "queue-wait"
    QUEUE_KEY = "queue-key"
    QUEUE_DONE = "queue-done"
    VOICEMAIL = "voicemail"
    CONFIRM = "confirm"
    CHOICE = "choice"


class AgentHook(StrEnum):
    """The webhooks of an agent's call (the agent's number has its own Voice URL), and of
    the caller's call while it is being connected to the agent (the caller's leg)."""

    ID = "agent-id"
    PIN = "agent-pin"
    NEXT = "agent-next"
    CONNECT = "agent-connect"  # after the whisper: the chosen caller is taken for the agent
    TAKEN = "agent-taken"  # caller's leg: taken out of the desk's queue, into the agent's
    HOLD = "agent-hold"  # caller's leg: the agent's queue's hold, a few rounds at most
    BACK = "agent-back"  # caller's leg: how the stay in the agent's queue ended
    GREET = "agent-greet"  # runs on the caller's leg, just before the two are connected
    AFTER = "agent-after"  # the Dial's action: the conversation is over
    WRAP = "agent-wrap"


class OutboundHook(StrEnum):
    """The webhooks of a call the hotline places (a callback or a survey)."""

    ANSWER = "outbound"  # the call's url: answered (or a machine)
    KEY = "outbound-key"


@dataclass(frozen=True)
class Target:
    hook: Hook
    state: CallState


@dataclass(frozen=True)
class AgentTarget:
    hook: AgentHook
    state: AgentCallState


@dataclass(frozen=True)
class OutboundTarget:
    hook: OutboundHook
    state: OutboundState


@dataclass(frozen=True)
class Say:
    text: str
    lang: str


def say(lang: str, text: Mapping[str, str], **values: object) -> Say:
    """One of the line's phrases (a text per language), in `lang`, its placeholders filled."""
    return Say(text[lang].format(**values) if values else text[lang], lang)


@dataclass(frozen=True)
class Play:
    url: str


@dataclass(frozen=True)
class Pause:
    seconds: int


Prompt = Say | Play | Pause


@dataclass(frozen=True)
class Gather:
    prompt: tuple[Prompt, ...]
    target: Target | AgentTarget | OutboundTarget
    timeout_s: int
    num_digits: int = 1
    finish_on_key: str = ""  # none by default: "#" is a menu key (back)


@dataclass(frozen=True)
class Record:
    target: Target
    max_length_s: int
    timeout_s: int
    finish_on_key: str


@dataclass(frozen=True)
class Enqueue:
    queue: str
    done: Target | AgentTarget  # the stay is over: how it ended
    wait: Target | AgentTarget  # the hold document, each round


@dataclass(frozen=True)
class Redirect:
    target: Target | AgentTarget | OutboundTarget


@dataclass(frozen=True)
class Leave:
    pass


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Dial:
    """Connect this call to the front caller of `queue` (or the first to join it within
    `timeout_s`); `greet` runs on the caller's leg."""

    queue: str
    done: AgentTarget
    greet: AgentTarget
    timeout_s: int = 20


Verb = Say | Play | Pause | Gather | Record | Enqueue | Redirect | Leave | Hangup | Dial


@dataclass(frozen=True)
class TicketChange:
    """Fields to set on the call's ticket; None leaves a field as it is."""

    note: str
    status: TicketStatus | None = None
    language: str | None = None
    menu_path: tuple[str, ...] | None = None
    specialty: str | None = None
    department: str | None = None
    tier: FeedbackTier | None = None
    queue: str | None = None
    queue_desk: str | None = None  # the specialty whose queue `queue` is (overflow differs)
    channel: Channel | None = None
    callback: bool | None = None
    queue_result: QueueExit | None = None
    wants_voicemail: bool | None = None
    recording: tuple[RecordingKind, Recording] | None = None
    understanding: Understanding | None = None
    appeal: AppealType | None = None
    choice: str | None = None  # what the caller made of the desks their words pointed to
    answered_by: str | None = None  # the agent connected to the caller
    outcome: str | None = None  # what the agent keyed in wrap-up
    wrapped: bool = False  # the agent's wrap-up of this ticket's call is over
    overdue: bool = False  # waited past the desk's maximum: backup agents may take the caller


Action = Verb | TicketChange
