"""The webhooks of the calls the hotline places: answered, a key, ended.

The job id travels in the signed URLs; what the call is about is read from the job. A
stale or unknown job gets a polite hang-up, never an error.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from hotline.twilio.twiml import empty_twiml
from hotline.twilio.webhooks import TERMINAL_CALL_STATUSES
from hotline.web.keys import CLOCK, CONFIG, JOBS, TICKETS, WEBHOOK
from hotline.web.voice.calls import twiml_response
from ivr.actions import Hangup, Verb
from ivr.outbound import (
    Answered,
    Heard,
    Keyed,
    OutboundAction,
    OutboundEvent,
    Rated,
    Silent,
    outbound_rescue,
    outbound_step,
)
from ivr.state import OutboundState

log = structlog.get_logger("hotline.outbound")


async def answered(request: web.Request) -> web.Response:
    """The placed call's url: a person (or a machine) answered."""
    machine = request[WEBHOOK].by_machine
    return await _step(request, Answered(machine=machine), answered=True)


async def key(request: web.Request) -> web.Response:
    digits = request[WEBHOOK].digits
    return await _step(request, Keyed(digits) if digits else Silent())


async def ended(request: web.Request) -> web.Response:
    """The placed call's status callback: settle the attempt (once, however often it comes)."""
    webhook = request[WEBHOOK]
    if webhook.call_sid and webhook.call_status in TERMINAL_CALL_STATUSES:
        policy = request.config_dict[CONFIG].current.callbacks
        settled = await request.config_dict[TICKETS].placed_call_ended(
            webhook.call_sid,
            webhook.call_status,
            webhook.by_machine,
            request.config_dict[CLOCK](),
            policy,
        )
        if settled is not None:
            log.info(
                "outbound_ended",
                ticket=settled.ticket,
                kind=settled.kind.value,
                attempt=settled.attempt.value,
                job_state=settled.state.value,
                call_sid=webhook.call_sid,
            )
    return empty_twiml()


def rescue_response(request: web.Request) -> web.Response:
    """Safe TwiML for a placed call's webhook whose handling failed (`outbound_rescue`)."""
    plan = request.config_dict[CONFIG].current.plan
    lang = request.query.get("lang", plan.default_language)
    verbs = [a for a in outbound_rescue(plan, lang) if not isinstance(a, Heard | Rated)]
    return twiml_response(request, plan, verbs)


async def _step(
    request: web.Request, event: OutboundEvent, *, answered: bool = False
) -> web.Response:
    plan = request.config_dict[CONFIG].current.plan
    jobs = request.config_dict[JOBS]
    state = OutboundState.from_params(request.query, lang=plan.default_language)
    call_sid = request[WEBHOOK].call_sid
    found = await jobs.facts(state.job) if state is not None else None
    if state is None or found is None or call_sid is None:
        log.warning("outbound_unknown_job", query=dict(request.query), call_sid=call_sid)
        return twiml_response(request, plan, [Hangup()])
    owed, lang, job_call = found
    now = request.config_dict[CLOCK]()
    if job_call is None and answered:
        # Answered before the API call that placed it returned.
        await request.config_dict[TICKETS].call_placed(state.job, call_sid, now)
    elif job_call != call_sid:
        log.warning("outbound_stale_call", job=state.job, call_sid=call_sid)
        return twiml_response(request, plan, [Hangup()])
    if lang in plan.language_codes() and state.lang not in plan.language_codes():
        state = OutboundState(state.job, lang, state.tries)
    _, actions = outbound_step(plan, owed, state, event)
    for action in actions:
        await _record(request, state.job, call_sid, owed.ticket, action)
    verbs: list[Verb] = [a for a in actions if not isinstance(a, Heard | Rated)]
    return twiml_response(request, plan, verbs)


async def _record(
    request: web.Request, job: int, call_sid: str, ticket: str, action: OutboundAction
) -> None:
    now = request.config_dict[CLOCK]()
    match action:
        case Heard():
            await request.config_dict[TICKETS].call_heard(job, call_sid, now)
        case Rated(rating=rating):
            number = await request.config_dict[TICKETS].survey_rated(job, call_sid, rating, now)
            log.info("survey_rated", ticket=number, rating=rating.value)
