"""The IVR plan the flow runs on: languages, prompts, menus and the desks they lead to.

Built once from the YAML in `config/` (see `hotline.config`), immutable afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from casework.calendar import WorkCalendar
from ivr.actions import Say
from routing.hours import BusinessHours
from routing.queue_router import QueueRouter
from routing.specialty import Specialty
from routing.tiers import TierRules

Text = Mapping[str, str]
"""One phrase in every language of the line, keyed by language code."""


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    say_language: str  # the text-to-speech language tag, e.g. zh-CN
    voice: str | None  # a voice of the carrier's text-to-speech, or its default


@dataclass(frozen=True)
class ToMenu:
    menu: str


@dataclass(frozen=True)
class ToSpecialty:
    specialty: str


@dataclass(frozen=True)
class ToDescribe:
    """ "Describe your issue": the caller speaks, a recording is kept."""


@dataclass(frozen=True)
class ToGeneralDesk:
    pass


OptionTarget = ToMenu | ToSpecialty | ToDescribe | ToGeneralDesk


@dataclass(frozen=True)
class MenuOption:
    key: str
    target: OptionTarget
    label: Text | None = None


@dataclass(frozen=True)
class Menu:
    id: str
    title: Text
    prompt: Text
    options: Mapping[str, MenuOption]
    parent: str | None


@dataclass(frozen=True)
class Prompts:
    greeting: Text
    switch_offer: Text  # said in the language it offers, e.g. "For English, press {key}."
    option_line: Text  # "{label}请按{key}。"
    navigation_hint: Text
    general_desk_hint: Text
    describe_option: Text
    no_input: Text
    invalid: Text
    too_many_tries: Text
    connecting: Text  # {desk}
    describe: Text
    closed: Text  # {hours}
    voicemail: Text
    voicemail_thanks: Text
    callback_intro: Text  # {ticket} {desk}
    callback_no_message: Text
    survey_intro: Text  # {ticket} {desk}
    survey_reopened: Text
    survey_thanks: Text
    outbound_goodbye: Text
    voicemail_empty: Text
    queue_busy: Text
    queue_next: Text
    queue_position: Text  # {ahead}
    queue_estimate: Text  # {minutes}
    queue_offer_voicemail: Text
    system_error: Text
    rate_limited: Text
    understood_confirm: Text  # {desk}
    understood_choose: Text  # {first} {second}
    not_understood: Text
    use_keys: Text
    agent_login: Text
    agent_pin: Text
    agent_wrong: Text
    agent_locked: Text
    agent_ready: Text
    agent_idle: Text
    agent_whisper: Text  # {desk} {ticket}
    agent_said: Text  # {words}
    agent_greet_caller: Text
    agent_wrap: Text
    agent_bye: Text
    agent_system_error: Text
    outbound_system_error: Text
    key_names: Mapping[str, Text]  # how "*" and "#" are spoken


@dataclass(frozen=True)
class RecordSettings:
    max_length_s: int
    timeout_s: int
    finish_on_key: str


@dataclass(frozen=True)
class QueueSettings:
    hold_music_url: str | None
    hold_pause_s: int
    offer_voicemail_every: int  # loops of the wait music


@dataclass(frozen=True)
class UnderstandingSettings:
    """How sure the classifier must be before the caller is put through on their words."""

    confirm_at: float  # the top desk is announced; a key says no
    choose_at: float  # the top two are offered
    attempts: int  # recordings before falling back to the key menu


@dataclass(frozen=True)
class Dialogue:
    max_tries: int
    gather_timeout_s: int
    switch_key: str
    describe: RecordSettings
    voicemail: RecordSettings
    queue: QueueSettings
    understanding: UnderstandingSettings


@dataclass(frozen=True)
class IvrPlan:
    languages: tuple[Language, ...]  # the first is the language a call starts in
    root: str
    menus: Mapping[str, Menu]
    specialties: Mapping[str, Specialty]
    general_desk: str
    hours: BusinessHours
    tiers: TierRules
    calendar: WorkCalendar  # how the tiers' days count
    prompts: Prompts
    dialogue: Dialogue
    router: QueueRouter
    # What each menu says, by (menu, language): the same for every caller, so composed
    # once when the config is loaded (`ivr.flow.with_menu_words`).
    menu_words: Mapping[tuple[str, str], tuple[Say, ...]] = field(default_factory=dict)

    @property
    def default_language(self) -> str:
        return self.languages[0].code

    def language_codes(self) -> tuple[str, ...]:
        return tuple(lang.code for lang in self.languages)
