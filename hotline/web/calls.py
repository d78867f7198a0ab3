"""The Twilio webhooks of a call: each turns a request into an event, steps the flow,
records the ticket changes and answers with TwiML.

Whatever fails here, the caller hears TwiML: a broken database or a bug sends the call to
the general desk, never to Twilio's "application error".
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog
from aiohttp import web
from multidict import MultiDict

from hotline.store.tickets import CallRef
from hotline.web.keys import AGENTS, CLOCK, CONFIG, STORE, UNDERSTANDER, VOICEMAILS
from hotline.web.staff import directory
from hotline.web.twilio_in import TERMINAL_CALL_STATUSES, Webhook, parse_webhook
from hotline.web.twiml import TwimlRenderer
from ivr.actions import Action, Enqueue, Gather, Hangup, Hook, Record, Redirect, TicketChange
from ivr.events import (
    CallStarted,
    ChoiceAnswered,
    ConfirmAnswered,
    Described,
    Event,
    KeyPressed,
    NoInput,
    QueueKeyPressed,
    QueueLeft,
    QueueWaiting,
    Recorded,
    RecordingMissing,
    RoutingRequested,
)
from ivr.flow import initial_state, rescue, step
from ivr.model import IvrPlan
from ivr.state import CallState
from routing.tickets import QueueResult, RecordingKind

log = structlog.get_logger("hotline.calls")

FORM = web.RequestKey("twilio_form", MultiDict[str])
TWIML = "text/xml"


async def voice(request: web.Request) -> web.Response:
    """The number's Voice URL: a new call."""
    plan = request.app[CONFIG].current.plan
    hook = _form(request)
    now = request.app[CLOCK]()
    return await _answer(request, plan, hook, initial_state(plan), CallStarted(at=now), "voice")


async def flow_hook(request: web.Request) -> web.Response:
    """Every URL the flow's own TwiML points at: /twilio/<hook>?<call state>."""
    try:
        hook_name = Hook(request.match_info["hook"])
    except ValueError:
        raise web.HTTPNotFound() from None
    plan = request.app[CONFIG].current.plan
    webhook = _form(request)
    state = CallState.from_params(request.query, lang=plan.default_language, node=plan.root)
    event = await _event(request, plan, hook_name, webhook, state)
    response = await _answer(request, plan, webhook, state, event, hook_name.value)
    if isinstance(event, Recorded) and state.desk is None and webhook.call_sid:
        # No desk was chosen (after hours): the message's words may name one.
        call = CallRef(webhook.call_sid, webhook.caller, webhook.called)
        request.app[VOICEMAILS].read_later(call, event.recording, state.lang)
    return response


async def status(request: web.Request) -> web.Response:
    """The status callback: the call is over; its ticket gets the duration."""
    webhook = _form(request)
    outcome = "ignored"
    if webhook.call_sid and webhook.call_status in TERMINAL_CALL_STATUSES:
        call = CallRef(webhook.call_sid, webhook.caller, webhook.called)
        try:
            await request.app[STORE].end_call(
                call, webhook.call_status, webhook.call_duration_s, request.app[CLOCK]()
            )
            outcome = "call-ended"
        except Exception:
            log.exception("ticket_write_failed", call_sid=webhook.call_sid, route="status")
            outcome = "ticket-write-failed"
    log.info(
        "webhook",
        route="status",
        call_sid=webhook.call_sid,
        call_status=webhook.call_status,
        outcome=outcome,
    )
    return web.Response(
        text='<?xml version="1.0" encoding="UTF-8"?><Response />', content_type=TWIML
    )


async def _event(
    request: web.Request, plan: IvrPlan, hook: Hook, webhook: Webhook, state: CallState
) -> Event:
    match hook:
        case Hook.MENU:
            return KeyPressed(webhook.digits) if webhook.digits else NoInput()
        case Hook.NO_INPUT:
            return NoInput()
        case Hook.VOICEMAIL:
            if webhook.recording is None:
                return RecordingMissing(RecordingKind.VOICEMAIL)
            return Recorded(RecordingKind.VOICEMAIL, webhook.recording)
        case Hook.DESCRIBED:
            if webhook.recording is None:
                return RecordingMissing(RecordingKind.DESCRIPTION)
            understanding = await request.app[UNDERSTANDER].understand(
                webhook.recording, state.lang, request.app[CONFIG].current, webhook.call_sid
            )
            return Described(webhook.recording, understanding)
        case Hook.CONFIRM:
            return ConfirmAnswered(webhook.digits or "")
        case Hook.CHOICE:
            return ChoiceAnswered(webhook.digits or "")
        case Hook.ROUTE:
            return RoutingRequested(await _waiting(request, plan, state))
        case Hook.QUEUE_WAIT:
            return QueueWaiting(
                webhook.queue_position or 1,
                webhook.avg_queue_time_s or 0,
                webhook.queue_time_s or 0,
                await _agents_ready(request, state),
            )
        case Hook.QUEUE_KEY:
            return QueueKeyPressed(webhook.digits or "")
        case Hook.QUEUE_DONE:
            result = webhook.queue_result or QueueResult.ERROR
            wants = result is QueueResult.LEAVE and await _wants_voicemail(request, webhook)
            return QueueLeft(result, wants_voicemail=wants)


async def _waiting(request: web.Request, plan: IvrPlan, state: CallState) -> dict[str, int]:
    queues = plan.router.chain(state.desk or plan.general_desk)
    try:
        return await request.app[STORE].waiting(queues, request.app[CLOCK]())
    except Exception:
        # Without counts the caller still joins the desk's own queue.
        log.exception("queue_counts_failed", queues=queues)
        return {}


async def _agents_ready(request: web.Request, state: CallState) -> int | None:
    desk = state.desk
    if desk is None:
        return None
    try:
        return await request.app[AGENTS].ready_count(desk, await directory(request))
    except Exception:
        log.exception("agent_states_failed", desk=desk)
        return None  # unknown: no overflow by time on a guess


async def _wants_voicemail(request: web.Request, webhook: Webhook) -> bool:
    if not webhook.call_sid:
        return True
    try:
        return await request.app[STORE].wants_voicemail(webhook.call_sid)
    except Exception:
        log.exception("ticket_read_failed", call_sid=webhook.call_sid)
        return True  # the only <Leave> we give is the caller's own request


async def _answer(
    request: web.Request,
    plan: IvrPlan,
    webhook: Webhook,
    state: CallState,
    event: Event,
    route: str,
) -> web.Response:
    started = time.perf_counter()
    try:
        _, actions = step(plan, state, event)
    except Exception:
        log.exception("flow_failed", route=route, call_sid=webhook.call_sid)
        _, actions = rescue(plan, state, _hook(route), webhook.queue_result)
    changes = [a for a in actions if isinstance(a, TicketChange)]
    ticket = await _record(request, webhook, changes, opening=route == "voice")
    response = twiml_response(plan, actions)
    log.info(
        "webhook",
        route=route,
        call_sid=webhook.call_sid,
        caller=webhook.caller,
        ticket=ticket,
        outcome=_outcome(actions),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return response


def rescue_response(request: web.Request) -> web.Response:
    """Safe TwiML for a request whose handling failed: the general desk, or keep holding."""
    plan = request.app[CONFIG].current.plan
    state = CallState.from_params(request.query, lang=plan.default_language, node=plan.root)
    webhook = _form(request) if FORM in request else None
    result = webhook.queue_result if webhook else None
    _, actions = rescue(plan, state, _hook(request.path.rsplit("/", 1)[-1]), result)
    return twiml_response(plan, actions)


def _hook(name: str) -> Hook | None:
    try:
        return Hook(name)
    except ValueError:
        return None


def twiml_response(plan: IvrPlan, actions: Sequence[Action]) -> web.Response:
    verbs = [a for a in actions if not isinstance(a, TicketChange)]
    body = TwimlRenderer({lang.code: lang for lang in plan.languages}).render(verbs)
    return web.Response(text=body, content_type=TWIML)


async def _record(
    request: web.Request, webhook: Webhook, changes: Sequence[TicketChange], *, opening: bool
) -> str | None:
    if webhook.call_sid is None:
        log.warning("webhook_without_call_sid", changes=[c.note for c in changes])
        return None
    call = CallRef(webhook.call_sid, webhook.caller, webhook.called)
    store = request.app[STORE]
    now = request.app[CLOCK]()
    try:
        number = await store.open(call, now) if opening else None
        await store.apply(call, changes, now)
        return number
    except Exception:
        log.exception(
            "ticket_write_failed", call_sid=webhook.call_sid, changes=[c.note for c in changes]
        )
        return None


def _outcome(actions: Sequence[Action]) -> str:
    for action in reversed(actions):
        match action:
            case Enqueue(queue=queue):
                return f"enqueue:{queue}"
            case Gather(target=target) | Redirect(target=target) | Record(target=target):
                return f"{type(action).__name__.lower()}:{target.hook.value}"
            case Hangup():
                return "hangup"
    return type(actions[-1]).__name__.lower() if actions else "empty"


def _form(request: web.Request) -> Webhook:
    form: MultiDict[str] = request[FORM]
    return parse_webhook(form)
