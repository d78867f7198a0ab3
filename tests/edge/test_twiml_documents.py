"""Rendered TwiML is kept per step of the flow: the same document as a fresh rendering."""

from __future__ import annotations

from dataclasses import replace

from hotline.config import LoadedConfig
from hotline.twilio.twiml import TwimlDocuments, TwimlRenderer
from ivr.actions import TicketChange, Verb
from ivr.events import CallStarted, KeyPressed
from ivr.flow import initial_state, step
from ivr.model import IvrPlan
from ivr.state import CallState
from tests.support.line import NOON


def verbs_of(plan: IvrPlan, state: CallState, *keys: str) -> tuple[CallState, list[Verb]]:
    state, actions = step(plan, state, CallStarted(NOON))
    for key in keys:
        state, actions = step(plan, state, KeyPressed(key))
    return state, [a for a in actions if not isinstance(a, TicketChange)]


def fresh(plan: IvrPlan, verbs: list[Verb]) -> str:
    return TwimlRenderer({lang.code: lang for lang in plan.languages}).render(verbs)


def test_a_kept_document_is_the_one_a_fresh_rendering_gives(shipped: LoadedConfig) -> None:
    plan = shipped.plan
    documents = TwimlDocuments()
    _, greeting = verbs_of(plan, initial_state(plan))
    _, submenu = verbs_of(plan, initial_state(plan), "2")
    first = documents.render(plan.languages, greeting)
    assert first == fresh(plan, greeting)
    assert documents.render(plan.languages, submenu) == fresh(plan, submenu)
    assert documents.render(plan.languages, list(greeting)) is first  # kept, not rebuilt
    assert len(documents) == 2


def test_the_calls_state_and_the_languages_are_part_of_the_key(shipped: LoadedConfig) -> None:
    plan = shipped.plan
    documents = TwimlDocuments()
    _, greeting = verbs_of(plan, initial_state(plan))
    pinned = replace(initial_state(plan), config="0123456789abcdef")
    _, pinned_greeting = verbs_of(plan, pinned)
    assert documents.render(plan.languages, pinned_greeting) == fresh(plan, pinned_greeting)
    assert "0123456789abcdef" in documents.render(plan.languages, pinned_greeting)
    assert "0123456789abcdef" not in documents.render(plan.languages, greeting)
    voiced = tuple(replace(lang, voice="Test.Voice-7") for lang in plan.languages)
    assert 'voice="Test.Voice-7"' in documents.render(voiced, greeting)
    assert 'voice="Test.Voice-7"' not in documents.render(plan.languages, greeting)


def test_the_least_recently_used_document_goes_first(shipped: LoadedConfig) -> None:
    plan = shipped.plan
    documents = TwimlDocuments(size=2)
    _, a = verbs_of(plan, initial_state(plan))
    _, b = verbs_of(plan, initial_state(plan), "2")
    _, c = verbs_of(plan, initial_state(plan), "1")
    kept_a = documents.render(plan.languages, a)
    documents.render(plan.languages, b)
    assert documents.render(plan.languages, a) is kept_a  # a is now the most recent
    documents.render(plan.languages, c)  # b goes
    assert len(documents) == 2
    assert documents.render(plan.languages, a) is kept_a
    assert documents.render(plan.languages, b) == fresh(plan, b)
