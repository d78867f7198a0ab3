"""The calls the hotline places: a callback, or a satisfaction survey.

`outbound_step(plan, owed, state, event) -> (state, actions)`, pure like the caller's flow.
What is owed (the ticket, its desk, the message left) is read by the edge from the job and
arrives as `OwedCallFacts`; the key presses arrive as events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from casework.tickets import Satisfaction
from ivr.actions import (
    Gather,
    Hangup,
    OutboundHook,
    OutboundTarget,
    Play,
    Prompt,
    Redirect,
    Target,
    Verb,
    say,
)
from ivr.actions import Hook as CallerHook
from ivr.model import IvrPlan
from ivr.state import CallState, OutboundState

MAX_TRIES = 2  # the intro said twice with no key: goodbye, the job retries later
CONNECT_KEY, REPLAY_KEY = "1", "2"


RATING_KEYS: Mapping[str, Satisfaction] = {
    "1": Satisfaction.SATISFIED,
    "2": Satisfaction.BASICALLY_SATISFIED,
    "3": Satisfaction.DISSATISFIED,
}


@dataclass(frozen=True)
class OwedCallFacts:
    kind: str  # "callback" | "survey"
    ticket: str  # its number, said to the enterprise
    desk: str | None  # the specialty the matter belongs to
    message_url: str | None  # the voicemail left, played again on request


@dataclass(frozen=True)
class Answered:
    machine: bool  # answering-machine detection heard a machine or a fax


@dataclass(frozen=True)
class Keyed:
    digits: str


@dataclass(frozen=True)
class Silent:
    """The intro's Gather timed out."""


OutboundEvent = Answered | Keyed | Silent


@dataclass(frozen=True)
class Rated:
    """The survey's answer: the edge stores it (and reopens the ticket when dissatisfied)."""

    rating: Satisfaction


@dataclass(frozen=True)
class Heard:
    """A person heard the callback's message: the job is done whatever happens next."""


OutboundAction = Verb | Rated | Heard


def outbound_step(
    plan: IvrPlan, owed: OwedCallFacts, state: OutboundState, event: OutboundEvent
) -> tuple[OutboundState, tuple[OutboundAction, ...]]:
    lang = state.lang
    survey = owed.kind == "survey"
    desk_id = _desk_id(plan, owed)
    desk = plan.specialties[desk_id].display_name(lang)
    intro = say(
        lang,
        plan.prompts.survey_intro if survey else plan.prompts.callback_intro,
        ticket=owed.ticket,
        desk=desk,
    )
    match event:
        case Answered(machine=True):
            return state, (Hangup(),)
        case Answered():
            # A person heard the callback's message: that callback is done, whatever next.
            return state, (*(() if survey else (Heard(),)), _ask(state, (intro,)))
        case Keyed(digits=d) if survey and d.strip() in RATING_KEYS:
            rating = RATING_KEYS[d.strip()]
            said = [say(lang, plan.prompts.survey_thanks)]
            if rating is Satisfaction.DISSATISFIED:
                said.insert(0, say(lang, plan.prompts.survey_reopened))
            return state, (Rated(rating), *said, Hangup())
        case Keyed(digits=d) if not survey and d.strip() == CONNECT_KEY:
            route = CallState(lang=lang, node=plan.root, desk=desk_id)
            return state, (
                say(lang, plan.prompts.connecting, desk=desk),
                Redirect(Target(CallerHook.ROUTE, route)),
            )
        case Keyed(digits=d) if not survey and d.strip() == REPLAY_KEY:
            again = replace(state, tries=0)
            message: Prompt = (
                Play(owed.message_url)
                if owed.message_url
                else say(lang, plan.prompts.callback_no_message)
            )
            return again, (_ask(again, (message, intro)),)
    # No key or a wrong one: the intro once more, then goodbye (the job retries later).
    tried = replace(state, tries=state.tries + 1)
    if tried.tries >= MAX_TRIES:
        return tried, (say(lang, plan.prompts.outbound_goodbye), Hangup())
    return tried, (_ask(tried, (intro,)),)


def outbound_rescue(plan: IvrPlan, lang: str) -> tuple[OutboundAction, ...]:
    """What a placed call hears when its webhook could not be handled: an apology and a
    goodbye. Never a callers' queue: the enterprise did not call, and the job tries again
    (a call with no rating or message heard is not reached)."""
    lang = lang if lang in plan.language_codes() else plan.default_language
    return (say(lang, plan.prompts.outbound_system_error), Hangup())


def _ask(state: OutboundState, prompt: tuple[Prompt, ...]) -> Gather:
    return Gather(prompt, OutboundTarget(OutboundHook.KEY, state), timeout_s=8)


def _desk_id(plan: IvrPlan, owed: OwedCallFacts) -> str:
    if owed.desk is not None and owed.desk in plan.specialties:
        return owed.desk
    return plan.general_desk
