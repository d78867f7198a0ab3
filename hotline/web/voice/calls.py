"""The Twilio webhooks of a call: each turns a request into an event, steps the flow,
records the ticket changes and answers with TwiML.

Whatever fails here, the caller hears TwiML: a broken database or a bug sends the call to
the general desk, never to Twilio's "application error".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace

import structlog
from aiohttp import web

from casework.tickets import RecordingKind
from hotline.store.durable import operation_key
from hotline.store.tickets import CallRef
from hotline.twilio.twiml import empty_twiml, twiml
from hotline.twilio.webhooks import TERMINAL_CALL_STATUSES, Webhook
from hotline.web.keys import (
    AGENTS,
    CLOCK,
    CONFIG,
    METRICS,
    STORE,
    TICKETS,
    TWIML_DOCUMENTS,
    UNCHANGED,
    UNDERSTANDER,
    VOICEMAILS,
    WEBHOOK,
)
from hotline.web.limits import caller_over_limit
from hotline.web.metrics import count_flow
from hotline.web.staff import directory
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
from ivr.flow import initial_state, refused, rescue, step, waited_too_long
from ivr.model import IvrPlan
from ivr.state import CallState
from routing.queue_router import QueueExit

log = structlog.get_logger("hotline.calls")


async def voice(request: web.Request) -> web.Response:
    """The number's Voice URL: a new call."""
    plan = request.config_dict[CONFIG].current.plan
    hook = request[WEBHOOK]
    if await caller_over_limit(request, hook):
        # Refused, but not lost: the call still has its ticket (this log line says why).
        ticket = await _record(request, hook, [], opening=True)
        log.info(
            "webhook",
            route="voice",
            call_sid=hook.call_sid,
            caller=hook.caller,
            ticket=ticket,
            outcome="refused:rate-limited",
        )
        request.config_dict[METRICS].call_outcome("voice", "refused:rate-limited")
        return twiml_response(request, plan, refused(plan))
    now = request.config_dict[CLOCK]()
    # The call keeps this config to its end, even if a reload comes in the meantime.
    started = replace(initial_state(plan), config=request.config_dict[CONFIG].current.digest)
    return await _answer(request, plan, hook, started, CallStarted(at=now), "voice")


async def flow_hook(request: web.Request) -> web.Response:
    """Every URL the flow's own TwiML points at: /twilio/<hook>?<call state>."""
    try:
        hook_name = Hook(request.match_info["hook"])
    except ValueError:
        raise web.HTTPNotFound() from None
    live = request.config_dict[CONFIG]
    webhook = request[WEBHOOK]
    state = CallState.from_params(
        request.query, lang=live.current.plan.default_language, node=live.current.plan.root
    )
    plan = live.for_call(state.config).plan  # the menus the call started on
    event = await _event(request, plan, hook_name, webhook, state)
    response = await _answer(request, plan, webhook, state, event, hook_name.value)
    if isinstance(event, Recorded) and state.desk is None and webhook.call_sid:
        # No desk was chosen (after hours): the message's words may name one.
        call = _call_ref(webhook.call_sid, webhook)
        request.config_dict[VOICEMAILS].read_later(call, event.recording, state.lang)
    return response


async def status(request: web.Request) -> web.Response:
    """The status callback: the call is over; its ticket gets the duration."""
    webhook = request[WEBHOOK]
    outcome = "ignored"
    if webhook.call_sid and webhook.call_status in TERMINAL_CALL_STATUSES:
        call = _call_ref(webhook.call_sid, webhook)
        try:
            await request.config_dict[TICKETS].end_call(
                call,
                webhook.call_status,
                webhook.call_duration_s,
                request.config_dict[CLOCK](),
                key=_operation_key(webhook),
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
    request.config_dict[METRICS].call_outcome("status", outcome)
    request[UNCHANGED] = outcome == "ignored"
    return empty_twiml()


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
            understanding = await request.config_dict[UNDERSTANDER].understand(
                webhook.recording, state.lang, request.config_dict[CONFIG].current, webhook.call_sid
            )
            return Described(webhook.recording, understanding)
        case Hook.CONFIRM:
            return ConfirmAnswered(webhook.digits or "")
        case Hook.CHOICE:
            return ChoiceAnswered(webhook.digits or "")
        case Hook.ROUTE:
            return RoutingRequested(await _waiting(request, plan, state))
        case Hook.QUEUE_WAIT:
            _note_queue_later(request, webhook, new_stay=state.loop == 0)
            return QueueWaiting(
                webhook.queue_position or 1,
                webhook.avg_queue_time_s or 0,
                webhook.queue_time_s or 0,
                # Every hold loop of every caller comes here: ask the database only when
                # the flow will use the answer.
                await _agents_ready(request, state)
                if waited_too_long(plan, state, webhook.queue_time_s or 0)
                else None,
            )
        case Hook.QUEUE_KEY:
            return QueueKeyPressed(webhook.digits or "")
        case Hook.QUEUE_DONE:
            result = webhook.queue_exit or QueueExit.ERROR
            wants = result is QueueExit.LEAVE and await _wants_voicemail(request, webhook)
            return QueueLeft(result, wants_voicemail=wants)


def _note_queue_later(request: web.Request, webhook: Webhook, *, new_stay: bool) -> None:
    """The carrier's id of the queue the caller holds in, kept with the caller's place in
    the queue view: taking this caller out for an agent needs it (once per stay). Noted
    beside the answer, not before it: the hold music never waits on the database (the
    load benchmark saw hold rounds wait out the write budget when 500 callers queued)."""
    call_sid, queue_sid = webhook.call_sid, webhook.queue_sid
    agents = request.config_dict[AGENTS]
    if not call_sid or not queue_sid or (not new_stay and agents.noted(call_sid, queue_sid)):
        return
    # Not noted (the database away, the join still in a spool): the next round tries again.
    note = agents.note_queue(call_sid, queue_sid, new_stay=new_stay)
    request.config_dict[TICKETS].budget.beside(note)


async def _waiting(request: web.Request, plan: IvrPlan, state: CallState) -> dict[str, int]:
    queues = plan.router.chain(state.desk or plan.general_desk)
    try:
        tickets = request.config_dict[TICKETS]
        return await tickets.budget.read(
            request.config_dict[STORE].waiting(queues, request.config_dict[CLOCK]())
        )
    except Exception:
        # Without counts the caller still joins the desk's own queue.
        log.exception("queue_counts_failed", queues=queues)
        return {}


async def _agents_ready(request: web.Request, state: CallState) -> int | None:
    desk = state.desk
    if desk is None:
        return None
    try:
        return await request.config_dict[TICKETS].budget.read(_ready_count(request, desk))
    except Exception:
        log.exception("agent_states_failed", desk=desk)
        return None  # unknown: no overflow by time on a guess


async def _ready_count(request: web.Request, desk: str) -> int:
    return await request.config_dict[AGENTS].ready_count(desk, await directory(request))


async def _wants_voicemail(request: web.Request, webhook: Webhook) -> bool:
    tickets = request.config_dict[TICKETS]
    if not webhook.call_sid or tickets.spool.holds(webhook.call_sid):
        return True  # the database's answer would be older than the spooled writes
    try:
        return await tickets.budget.read(
            request.config_dict[STORE].wants_voicemail(webhook.call_sid)
        )
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
        _, actions = rescue(plan, state, _hook(route), webhook.queue_exit)
    changes = [a for a in actions if isinstance(a, TicketChange)]
    opening = route == "voice"
    # A step that changes nothing on the ticket (moving between menus): no write, no key.
    unchanged = request[UNCHANGED] = not changes and not opening
    ticket = None if unchanged else await _record(request, webhook, changes, opening=opening)
    response = twiml_response(request, plan, actions)
    outcome = _outcome(actions)
    log.info(
        "webhook",
        route=route,
        call_sid=webhook.call_sid,
        caller=webhook.caller,
        ticket=ticket,
        outcome=outcome,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    count_flow(request.config_dict[METRICS], plan, route, state, event, actions, outcome)
    return response


def rescue_response(request: web.Request) -> web.Response:
    """Safe TwiML for a request whose handling failed: the general desk, or keep holding."""
    plan = request.config_dict[CONFIG].current.plan
    state = CallState.from_params(request.query, lang=plan.default_language, node=plan.root)
    webhook = request.get(WEBHOOK)
    result = webhook.queue_exit if webhook else None
    _, actions = rescue(plan, state, _hook(request.path.rsplit("/", 1)[-1]), result)
    return twiml_response(request, plan, actions)


def _call_ref(call_sid: str, webhook: Webhook) -> CallRef:
    """The call as its ticket keeps it: each number in E.164, or `withheld` / `unknown`."""
    return CallRef(call_sid, str(webhook.caller), str(webhook.called))


def _hook(name: str) -> Hook | None:
    try:
        return Hook(name)
    except ValueError:
        return None


def twiml_response(request: web.Request, plan: IvrPlan, actions: Sequence[Action]) -> web.Response:
    verbs = [a for a in actions if not isinstance(a, TicketChange)]
    return twiml(request.config_dict[TWIML_DOCUMENTS].render(plan.languages, verbs))


async def _record(
    request: web.Request, webhook: Webhook, changes: Sequence[TicketChange], *, opening: bool
) -> str | None:
    if webhook.call_sid is None:
        log.warning("webhook_without_call_sid", changes=[c.note for c in changes])
        return None
    call = _call_ref(webhook.call_sid, webhook)
    now = request.config_dict[CLOCK]()
    try:
        # Into the database, or (when it is away or slow) the local spool: either way the
        # caller is routed now, and the ticket is written exactly once.
        return await request.config_dict[TICKETS].record(
            call, changes, now, key=_operation_key(webhook), opening=opening
        )
    except Exception:
        log.exception(
            "ticket_write_failed", call_sid=webhook.call_sid, changes=[c.note for c in changes]
        )
        return None


def _operation_key(webhook: Webhook) -> str:
    """A retried webhook carries the same token: the same key, so it is written once."""
    return operation_key(webhook.call_sid or "", webhook.retry_token or uuid.uuid4().hex)


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
