"""The shape of every file in `config/`, as pydantic models (unknown fields are errors)."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    field_validator,
    model_validator,
)

from hotline.twilio.numbers import agent_phone
from routing.tiers import AppealType, FeedbackTier

Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,47}$")]
Key = Annotated[str, Field(pattern=r"^[1-9]$")]
Text = dict[str, Annotated[str, Field(min_length=1, max_length=600)]]
# What an agent's calls ring: a number that can be called, in E.164, or client:<name>.
AgentPhone = Annotated[str, AfterValidator(agent_phone)]

_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _clock(value: object) -> object:
    """ "06:00" or "24:00"; YAML may hand us an int of minutes for an unquoted 6:00."""
    if isinstance(value, int):
        value = f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, str):
        match = _CLOCK.match(value)
        if not match or (match.group(1) == "24" and match.group(2) != "00"):
            raise ValueError(f"expected a time HH:MM from 00:00 to 24:00, got {value!r}")
        hours, minutes = int(match.group(1)), int(match.group(2))
        return time(0, 0) if hours == 24 else time(hours, minutes)
    return value


class Window(Strict):
    open: time
    close: time

    _open = field_validator("open", mode="before")(_clock)
    _close = field_validator("close", mode="before")(_clock)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.close != time(0, 0) and self.close <= self.open:
            raise ValueError("close must be after open (24:00 means midnight)")
        return self


class DayOverride(Strict):
    date: date
    closed: bool = False
    open: time | None = None
    close: time | None = None
    reason: str | None = None

    _open = field_validator("open", mode="before")(_clock)
    _close = field_validator("close", mode="before")(_clock)

    @model_validator(mode="after")
    def _either(self) -> DayOverride:
        if self.closed == (self.open is not None or self.close is not None):
            raise ValueError("give either closed: true or both open and close")
        if not self.closed and (self.open is None or self.close is None):
            raise ValueError("give both open and close")
        return self


class Hours(Strict):
    open: time
    close: time
    emergency_closed: bool = False
    overrides: list[DayOverride] = []

    _open = field_validator("open", mode="before")(_clock)
    _close = field_validator("close", mode="before")(_clock)


class LanguageSpec(Strict):
    code: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
    name: str
    say_language: str
    voice: str | None = None


class RecordSpec(Strict):
    max_length_s: Annotated[int, Field(ge=1, le=3600)]
    timeout_s: Annotated[int, Field(ge=1, le=60)]
    finish_on_key: Annotated[str, Field(pattern=r"^[0-9*#]?$")] = "#"


class QueueSpec(Strict):
    hold_music_url: str | None = None
    hold_pause_s: Annotated[int, Field(ge=1, le=120)] = 20
    offer_voicemail_every: Annotated[int, Field(ge=1, le=100)] = 3


class DialogueSpec(Strict):
    max_tries: Annotated[int, Field(ge=1, le=10)] = 3
    gather_timeout_s: Annotated[int, Field(ge=1, le=30)] = 6
    switch_key: Annotated[str, Field(pattern=r"^[1-9]$")] = "9"
    describe: RecordSpec
    voicemail: RecordSpec
    queue: QueueSpec = QueueSpec()


class CallbacksSpec(Strict):
    """Calls the hotline places (callbacks, surveys): how many at once, how often to retry."""

    max_in_flight: Annotated[int, Field(ge=1, le=200)] = 4
    per_desk: Annotated[int, Field(ge=1, le=50)] = 1
    attempts: Annotated[int, Field(ge=1, le=10)] = 3
    retry_after_min: Annotated[int, Field(ge=1, le=1440)] = 30
    ring_timeout_s: Annotated[int, Field(ge=10, le=120)] = 30
    stop_before_close_min: Annotated[int, Field(ge=0, le=240)] = 15


class LineFile(Strict):
    """line.yaml: when the line answers, in which languages, and how patiently."""

    timezone: str
    hours: Hours
    languages: Annotated[list[LanguageSpec], Field(min_length=1)]
    dialogue: DialogueSpec
    callbacks: CallbacksSpec = CallbacksSpec()


class PromptsFile(Strict):
    """prompts.yaml: every sentence the caller hears, per language."""

    greeting: Text
    switch_offer: Text
    option_line: Text
    navigation_hint: Text
    general_desk_hint: Text
    describe_option: Text
    no_input: Text
    invalid: Text
    too_many_tries: Text
    connecting: Text
    describe: Text
    closed: Text
    voicemail: Text
    voicemail_thanks: Text
    callback_intro: Text
    callback_no_message: Text
    survey_intro: Text
    survey_reopened: Text
    survey_thanks: Text
    outbound_goodbye: Text
    voicemail_empty: Text
    queue_busy: Text
    queue_next: Text
    queue_position: Text
    queue_estimate: Text
    queue_offer_voicemail: Text
    system_error: Text
    rate_limited: Text
    understood_confirm: Text
    understood_choose: Text
    not_understood: Text
    use_keys: Text
    agent_login: Text
    agent_pin: Text
    agent_wrong: Text
    agent_locked: Text
    agent_ready: Text
    agent_idle: Text
    agent_whisper: Text
    agent_said: Text
    agent_greet_caller: Text
    agent_wrap: Text
    agent_bye: Text
    agent_system_error: Text
    outbound_system_error: Text
    key_names: dict[Literal["*", "#"], Text] = {}


# The placeholders each prompt may use; anything else would fail on a live call.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "switch_offer": frozenset({"key"}),
    "option_line": frozenset({"label", "key"}),
    "connecting": frozenset({"desk"}),
    "closed": frozenset({"hours"}),
    "queue_position": frozenset({"ahead"}),
    "queue_estimate": frozenset({"minutes"}),
    "queue_offer_voicemail": frozenset({"key"}),
    "understood_confirm": frozenset({"desk"}),
    "understood_choose": frozenset({"first", "second"}),
    "agent_whisper": frozenset({"desk", "ticket"}),
    "agent_said": frozenset({"words"}),
    "callback_intro": frozenset({"ticket", "desk"}),
    "survey_intro": frozenset({"ticket", "desk"}),
}


class SpecialtyQueue(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None
    size: Annotated[int, Field(ge=1, le=1000)] = 30
    overflow: str = "voicemail"
    max_wait_s: Annotated[int, Field(ge=10, le=7200)] = 300


class SpecialtySpec(Strict):
    name: Text
    department: Id
    queue: SpecialtyQueue = SpecialtyQueue()
    tiers: dict[AppealType, FeedbackTier] = {}


class SpecialtiesFile(Strict):
    """specialties.yaml: the desks, the departments that own their matters, their queues."""

    general_desk: Id
    departments: dict[Id, Text]
    specialties: dict[Id, SpecialtySpec]


class OptionSpec(Strict):
    menu: Id | None = None
    specialty: Id | None = None
    describe: bool = False
    general_desk: bool = False
    label: Text | None = None

    @model_validator(mode="after")
    def _one_target(self) -> OptionSpec:
        chosen = [
            self.menu is not None,
            self.specialty is not None,
            self.describe,
            self.general_desk,
        ]
        if sum(chosen) != 1:
            raise ValueError(
                "an option needs exactly one of: menu, specialty, describe: true, "
                "general_desk: true"
            )
        return self


class MenuSpec(Strict):
    title: Text
    prompt: Text
    options: Annotated[dict[Key, OptionSpec], Field(min_length=1)]


class MenusFile(Strict):
    """menus.yaml: the key menus, a tree from `root`."""

    root: Id
    menus: dict[Id, MenuSpec]


def _weekend(day: date) -> date:
    if day.weekday() < 5:
        raise ValueError(
            f"{day} is a {day:%A}: a make-up workday is a Saturday or Sunday worked instead "
            "(a weekday is a working day anyway)"
        )
    return day


class TiersFile(Strict):
    """tiers.yaml: the feedback tier of each appeal type, and how the days are counted."""

    count: Literal["working-days", "calendar-days"] = "working-days"
    holidays: list[date] = []  # public holidays (放假), weekend days among them too
    makeup_workdays: list[Annotated[date, AfterValidator(_weekend)]] = []  # 调休上班
    defaults: dict[AppealType, FeedbackTier]

    @field_validator("defaults")
    @classmethod
    def _complete(cls, value: dict[AppealType, FeedbackTier]) -> dict[AppealType, FeedbackTier]:
        missing = [a.value for a in AppealType if a not in value]
        if missing:
            raise ValueError(f"every appeal type needs a tier; missing: {', '.join(missing)}")
        return value


class DistrictsFile(Strict):
    """districts.yaml: the districts a matter may belong to (set by ops, reported on)."""

    districts: Annotated[dict[Id, Text], Field(min_length=1)]


class UnderstandingSpec(Strict):
    # The top desk's score (0..1) decides the dialogue after the caller spoke.
    confirm_at: Annotated[float, Field(gt=0, le=1)] = 0.5
    choose_at: Annotated[float, Field(gt=0, le=1)] = 0.2
    attempts: Annotated[int, Field(ge=1, le=3)] = 2

    @model_validator(mode="after")
    def _ordered(self) -> UnderstandingSpec:
        if self.choose_at > self.confirm_at:
            raise ValueError("choose_at must not be above confirm_at")
        return self


class RecognitionSpec(Strict):
    deadline_s: Annotated[float, Field(gt=0, le=12)] = 4.0
    min_length_s: Annotated[float, Field(ge=0, le=10)] = 1.0
    max_length_s: Annotated[float, Field(ge=1, le=600)] = 60.0
    vosk_rate: Literal[8000, 16000] | None = None


class ModelsSpec(Strict):
    zh: str | None = "vosk-model-small-cn-0.22"
    en: str | None = None


class SpeechFile(Strict):
    """speech.yaml: how a caller's own words are recognised and understood."""

    understanding: UnderstandingSpec = UnderstandingSpec()
    recognition: RecognitionSpec = RecognitionSpec()
    models: ModelsSpec = ModelsSpec()


Utterance = Annotated[str, Field(min_length=1, max_length=300)]
Appeal = Literal["consultation", "request", "complaint", "report", "suggestion"]


class DeskExamplesSpec(Strict):
    keywords: dict[str, list[Annotated[str, Field(min_length=1, max_length=40)]]] = {}
    examples: dict[str, dict[Appeal, list[Utterance]]] = {}


class ExamplesFile(RootModel[dict[Id, DeskExamplesSpec]]):
    """examples/*.yaml: what callers of each desk say, for the classifier and the grammar."""


PIN_HASH = r"^pbkdf2_sha256\$[0-9]+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$"


class AgentSpec(Strict):
    id: Annotated[str, Field(pattern=r"^[0-9]{2,8}$")]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    answers_on: AgentPhone
    pin_hash: Annotated[
        str, Field(pattern=r"^pbkdf2_sha256\$[0-9]+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$")
    ]
    desks: Annotated[dict[Id, Literal["primary", "backup"]], Field(min_length=1)]


class AgentsFile(Strict):
    """agents.yaml: who answers which desks, and how the desks' calls are paced."""

    wrap_up_s: Annotated[int, Field(ge=0, le=600)] = 30
    service_level_s: Annotated[int, Field(ge=1, le=600)] = 20
    idle_recheck_s: Annotated[int, Field(ge=2, le=60)] = 10
    agents: list[AgentSpec] = []


TokenDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class AccessFile(Strict):
    """access.yaml: each department's bearer tokens for the ops API, as SHA-256 digests."""

    # Several digests per department: a new token is added before the old one is removed.
    departments: dict[Id, list[TokenDigest]] = {}
