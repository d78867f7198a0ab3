"""The person on the phone: what the carrier tells a caller, and what it asks of one.

The carrier never decides anything a human would decide (which keys, whether
to speak, whether to keep holding); it asks a `Caller`. Tests use the
deterministic `ScriptedCaller`; the ops command uses `terminal.TerminalCaller`.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar


class QueueChoice(enum.Enum):
    """What happens to a waiting caller after one run of the hold document."""

    WAIT = "wait"  # keep holding: the carrier fetches the waitUrl again
    # An anonymous agent takes the call and they talk (the carrier's bridged_talk_seconds).
    # Real agents are other calls of the same carrier whose <Dial><Queue> dequeues it.
    BRIDGED = "bridged"
    HANGUP = "hangup"  # the caller gives up and puts the phone down


@dataclass(frozen=True)
class HangUp:
    """Returned by a caller at a prompt to end the call from its side."""


HANG_UP = HangUp()


@dataclass(frozen=True)
class Heard:
    """One thing the caller heard: a <Say>, a <Play> or a <Pause>."""

    kind: Literal["say", "play", "pause"]
    text: str  # the spoken text, the audio URL, or "" for a pause
    language: str | None = None  # the language attribute as written (None: Twilio's en-US)
    voice: str | None = None
    seconds: float = 0.0  # simulated time it took, all loops included
    loop: int = 1
    digits: str | None = None  # <Play digits="..."> tones
    queue: str | None = None  # set when heard while holding in this queue


@dataclass(frozen=True)
class GatherInfo:
    """A <Gather> waiting for keys, after its nested prompts were heard."""

    url: str  # where the digits will be sent
    prompts: tuple[Heard, ...] = ()
    num_digits: int | None = None
    timeout: float = 5.0
    finish_on_key: str = "#"
    input: tuple[str, ...] = ("dtmf",)
    queue: str | None = None

    @property
    def said(self) -> str:
        return " ".join(item.text for item in self.prompts if item.kind == "say")


@dataclass(frozen=True)
class RecordInfo:
    """A <Record> about to record the caller."""

    url: str
    max_length: float = 3600.0
    timeout: float = 5.0
    finish_on_key: str = "1234567890*#"
    play_beep: bool = True


@dataclass(frozen=True)
class QueueInfo:
    """Where a waiting caller stands, as Twilio reports it to the waitUrl."""

    queue: str
    queue_sid: str
    position: int  # 1-based
    size: int
    max_size: int
    queue_time: int  # seconds this caller has waited
    avg_queue_time: int
    loop: int  # 1 after the first run of the hold document, 2 after the second...


@dataclass(frozen=True)
class Recording:
    """What the caller said at a <Record>.

    `end` says how the recording stopped: None presses "#" (or the first
    finish key the <Record> accepts), a key presses that key, "" is silence
    until the timeout, "hangup" puts the phone down after speaking.
    """

    duration: float
    url: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class BridgeInfo:
    """The far end a <Dial> just connected this call with."""

    call_sid: str  # the other leg: the dequeued caller's call, or the dialed number's
    number: str  # the dequeued caller's From, or the dialed <Number> ("client:name" for <Client>)
    queue: str | None = None  # set for <Dial><Queue>: the queue the caller was taken from
    queue_sid: str | None = None
    queue_time: int = 0  # seconds the dequeued caller had waited


@dataclass(frozen=True)
class BridgeEnd:
    """How a bridged conversation ends, as decided by the dialing side's caller.

    `hangs_up` says who puts the phone down first: "agent" (the dialing call),
    "caller" (the far end: the dequeued caller or the dialed number), or "both".
    """

    hangs_up: Literal["caller", "agent", "both"] = "agent"
    talk_seconds: float = 60.0  # simulated


class Caller(Protocol):
    """What the carrier asks of the person on a call.

    A caller may also define `on_bridged` (see `BridgingCaller`): the carrier asks
    it how a conversation set up by this call's <Dial> ends. Without it the
    dialing side hangs up after the carrier's `bridged_talk_seconds`.
    """

    async def hear(self, item: Heard) -> None: ...

    async def press(self, prompt: GatherInfo) -> str | HangUp | None:
        """Keys pressed (a finish key may be included), None for no input."""
        ...

    async def record(self, prompt: RecordInfo) -> Recording | HangUp | None:
        """None means silence: Twilio then skips the action URL."""
        ...

    async def in_queue(self, info: QueueInfo) -> QueueChoice:
        """Asked after each round of hold music. If another call's <Dial><Queue>
        dequeues this caller meanwhile, the carrier stops waiting for the answer."""
        ...


class BridgingCaller(Caller, Protocol):
    async def on_bridged(self, info: BridgeInfo) -> BridgeEnd:
        """This call's <Dial> connected it with `info`: how does the conversation end?"""
        ...


@dataclass(frozen=True)
class QueuePlan:
    """Hold `waits` more times after the first run of the hold music, then `then`.

    With `patience` the caller first keeps holding that many real seconds before
    doing `then`, so another call's <Dial><Queue> can take it meanwhile.
    """

    waits: int = 0
    then: QueueChoice = QueueChoice.BRIDGED
    patience: float = 0.0


KeyAnswer = str | None | HangUp
RecordAnswer = Recording | None | HangUp
_Answer = TypeVar("_Answer")


class ScriptedCaller:
    """A caller that follows a script and writes down everything it hears.

    Once a script runs out the caller hangs up (or stays silent with
    `out_of_script="silence"`), so a flow that asks more than the test
    expected ends the call instead of waiting forever. `bridge` says how the
    conversations its <Dial>s set up end (the last one repeats).
    """

    def __init__(
        self,
        keys: Iterable[KeyAnswer] = (),
        recordings: Iterable[RecordAnswer] = (),
        queue: QueuePlan | Sequence[QueuePlan] = QueuePlan(),
        *,
        out_of_script: Literal["hang-up", "silence"] = "hang-up",
        queue_gate: asyncio.Event | None = None,
        bridge: BridgeEnd | Sequence[BridgeEnd] = BridgeEnd(),
    ) -> None:
        self._keys = list(keys)
        self._recordings = list(recordings)
        self._plans = [queue] if isinstance(queue, QueuePlan) else list(queue) or [QueuePlan()]
        self._out_of_script = out_of_script
        # Lets a test hold this caller in the queue (answering nothing) until
        # it has done something else, e.g. filled the queue with another call.
        self._queue_gate = queue_gate
        self._queue_entries = 0
        self._bridge_ends = [bridge] if isinstance(bridge, BridgeEnd) else list(bridge)
        self._bridge_ends = self._bridge_ends or [BridgeEnd()]
        self.heard: list[Heard] = []
        self.gathers: list[GatherInfo] = []
        self.record_prompts: list[RecordInfo] = []
        self.queue_updates: list[QueueInfo] = []
        self.bridges: list[BridgeInfo] = []
        self.hung_up = False

    @property
    def said(self) -> list[str]:
        return [item.text for item in self.heard if item.kind == "say"]

    async def hear(self, item: Heard) -> None:
        self.heard.append(item)

    async def press(self, prompt: GatherInfo) -> KeyAnswer:
        self.gathers.append(prompt)
        return self._next(self._keys)

    async def record(self, prompt: RecordInfo) -> RecordAnswer:
        self.record_prompts.append(prompt)
        return self._next(self._recordings)

    async def in_queue(self, info: QueueInfo) -> QueueChoice:
        self.queue_updates.append(info)
        if info.loop == 1:
            self._queue_entries += 1
        plan = self._plans[min(self._queue_entries, len(self._plans)) - 1]
        if info.loop <= plan.waits:
            return QueueChoice.WAIT
        if plan.patience > 0:
            await asyncio.sleep(plan.patience)
        if self._queue_gate is not None:
            await self._queue_gate.wait()
        if plan.then is QueueChoice.HANGUP:
            self.hung_up = True
        return plan.then

    async def on_bridged(self, info: BridgeInfo) -> BridgeEnd:
        self.bridges.append(info)
        end = self._bridge_ends[min(len(self.bridges), len(self._bridge_ends)) - 1]
        if end.hangs_up != "caller":
            self.hung_up = True
        return end

    def _next(self, script: list[_Answer]) -> _Answer | HangUp | None:
        if not script:
            if self._out_of_script == "silence":
                return None
            self.hung_up = True
            return HANG_UP
        answer = script.pop(0)
        if isinstance(answer, HangUp):
            self.hung_up = True
        return answer
