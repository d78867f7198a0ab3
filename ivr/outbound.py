"""The calls the hotline places: a callback, or a satisfaction survey.

`outbound_step(plan, owed, state, event) -> (state, actions)`, pure like the caller's flow.
What is owed (the ticket, its desk, the message left) is read by the edge from the job and
arrives as `OwedCallFacts`; the key presses arrive as events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from ivr.actions import (
    Gather,
    Hangup,
    OutboundHook,
    OutboundTarget,
    Play,
    Prompt,
    Redirect,
    Say,
    Target,
    Verb,
)
from ivr.actions import Hook as CallerHook
from ivr.model import IvrPlan, Text
from ivr.state import CallState, OutboundState

MAX_TRIES = 2  # the intro said twice with no key: goodbye, the job retries later
CONNECT_KEY, REPLAY_KEY = "1", "2"


class Rating(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically-satisfied"
    DISSATISFIED = "dissatisfied"


RATING_KEYS: Mapping[str, Rating] = {
    "1": Rating.SATISFIED,
    "2": Rating.BASICALLY_SATISFIED,
    "3": Rating.DISSATISFIED,
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

    rating: Rating


@dataclass(frozen=True)
class Heard:
    """A person heard the callback's message: the job is done whatever happens next."""


OutboundAction = Verb | Rated | Heard


def outbound_step(
    plan: IvrPlan, owed: OwedCallFacts, state: OutboundState, event: OutboundEvent
) -> tuple[OutboundState, tuple[OutboundAction, ...]]:
    if owed.kind == "survey":
        return _survey(plan, owed, state, event)
    return _callback(plan, owed, state, event)


def _callback(
    plan: IvrPlan, owed: OwedCallFacts, state: OutboundState, event: OutboundEvent
) -> tuple[OutboundState, tuple[OutboundAction, ...]]:
    desk = _desk_name(plan, owed, state.lang)
    match event:
        case Answered(machine=True):
            return state, (Hangup(),)
        case Answered():
            intro = _say(plan.prompts.callback_intro, state.lang, ticket=owed.ticket, desk=desk)
            return state, (Heard(), _ask(state, (intro,)))
        case Keyed(digits=d) if d.strip() == CONNECT_KEY:
            route = CallState(lang=state.lang, node=plan.root, desk=_desk_id(plan, owed))
            return state, (
                _say(plan.prompts.connecting, state.lang, desk=desk),
                Redirect(Target(CallerHook.ROUTE, route)),
            )
        case Keyed(digits=d) if d.strip() == REPLAY_KEY:
            again = replace(state, tries=0)
            message: tuple[Prompt, ...] = (
                (Play(owed.message_url),)
                if owed.message_url
                else (_say(plan.prompts.callback_no_message, state.lang),)
            )
            menu = _say(plan.prompts.callback_intro, state.lang, ticket=owed.ticket, desk=desk)
            return again, (_ask(again, (*message, menu)),)
    return _again(plan, state, plan.prompts.callback_intro, ticket=owed.ticket, desk=desk)


def _survey(
    plan: IvrPlan, owed: OwedCallFacts, state: OutboundState, event: OutboundEvent
) -> tuple[OutboundState, tuple[OutboundAction, ...]]:
    desk = _desk_name(plan, owed, state.lang)
    match event:
        case Answered(machine=True):
            return state, (Hangup(),)
        case Answered():
            intro = _say(plan.prompts.survey_intro, state.lang, ticket=owed.ticket, desk=desk)
            return state, (_ask(state, (intro,)),)
        case Keyed(digits=d) if d.strip() in RATING_KEYS:
            rating = RATING_KEYS[d.strip()]
            said = [_say(plan.prompts.survey_thanks, state.lang)]
            if rating is Rating.DISSATISFIED:
                said.insert(0, _say(plan.prompts.survey_reopened, state.lang))
            return state, (Rated(rating), *said, Hangup())
    return _again(plan, state, plan.prompts.survey_intro, ticket=owed.ticket, desk=desk)


def _again(
    plan: IvrPlan, state: OutboundState, intro: Text, **values: str
) -> tuple[OutboundState, tuple[OutboundAction, ...]]:
    """No key or a wrong one: say it once more, then goodbye (the job retries later)."""
    tried = replace(state, tries=state.tries + 1)
    if tried.tries >= MAX_TRIES:
        return tried, (_say(plan.prompts.outbound_goodbye, state.lang), Hangup())
    return tried, (_ask(tried, (_say(intro, state.lang, **values),)),)


def _ask(state: OutboundState, prompt: tuple[Prompt, ...]) -> Gather:
    return Gather(prompt, OutboundTarget(OutboundHook.KEY, state), timeout_s=8)


def _desk_id(plan: IvrPlan, owed: OwedCallFacts) -> str:
    if owed.desk is not None and owed.desk in plan.specialties:
        return owed.desk
    return plan.general_desk


def _desk_name(plan: IvrPlan, owed: OwedCallFacts, lang: str) -> str:
    return plan.specialties[_desk_id(plan, owed)].display_name(lang)


def _say(text: Text, lang: str, **values: str) -> Say:
    return Say(text[lang].format(**values), lang)
