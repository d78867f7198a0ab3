"""The agents' webhooks: the agent number's Voice URL and the URLs its TwiML points at.

Same shape as calls.py: request → event → `ivr.agent.agent_step` → effects → TwiML.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

import structlog
from aiohttp import web

from hotline.auth.lockout import PIN_LOCKOUT, locked_until
from hotline.auth.pins import verify_pin
from hotline.store.durable import operation_key
from hotline.store.tickets import CallRef
from hotline.twilio.rest import TakeError
from hotline.twilio.twiml import empty_twiml
from hotline.twilio.urls import absolute
from hotline.twilio.webhooks import public_base
from hotline.web.keys import AGENTS, CLOCK, CONFIG, MEMBERS, SETTINGS, TICKETS, WEBHOOK
from hotline.web.staff import directory
from hotline.web.voice.calls import twiml_response
from ivr.actions import Action, AgentHook, AgentTarget, TicketChange
from ivr.agent import (
    AgentAction,
    AgentCalled,
    AgentChange,
    AgentEvent,
    AgentIdEntered,
    CallerForAgent,
    CallerTaken,
    CallerTicket,
    Connected,
    DialEnded,
    HoldingForAgent,
    IntoAgentQueue,
    LeftAgentQueue,
    LogOut,
    NextCaller,
    OutcomeKeyed,
    PinChecked,
    Taken,
    agent_rescue,
    agent_step,
)
from ivr.state import AgentCallState
from routing.acd import AgentState
from routing.queue_router import QueueExit

log = structlog.get_logger("hotline.agents")


async def agent_call(request: web.Request) -> web.Response:
    """The agent number's Voice URL: an agent calls in to log in."""
    return await _answer(request, AgentCalled(), "agent")


async def agent_hook(request: web.Request) -> web.Response:
    try:
        hook = AgentHook(request.match_info["hook"])
    except ValueError:
        raise web.HTTPNotFound() from None
    return await _answer(request, await _event(request, hook), hook.value)


async def agent_status(request: web.Request) -> web.Response:
    """The agent number's status callback: the agent hung up, so the agent is offline."""
    call_sid = request[WEBHOOK].call_sid
    agents = request.config_dict[AGENTS]
    for status in (await agents.states()).values():
        if call_sid and status.call_sid == call_sid and status.state is not AgentState.OFFLINE:
            await agents.set_state(
                status.agent_id,
                AgentState.OFFLINE,
                request.config_dict[CLOCK](),
                "hung up",
                call_sid=call_sid,
            )
            await agents.release(status.agent_id)
    return empty_twiml()


def rescue_response(request: web.Request) -> web.Response:
    """Safe TwiML for an agent's webhook whose handling failed (see `agent_rescue`)."""
    config = request.config_dict[CONFIG].current
    try:
        hook: AgentHook | None = AgentHook(request.path.rsplit("/", 1)[-1])
    except ValueError:
        hook = None  # the agent number's own Voice URL, /twilio/agent
    webhook = request.get(WEBHOOK)
    _, actions = agent_rescue(
        config.plan,
        _state(request),
        hook,
        idle_recheck_s=config.staffing.idle_recheck_s,
        result=webhook.queue_exit if webhook else None,
    )
    return twiml_response(request, config.plan, actions)


def _state(request: web.Request) -> AgentCallState:
    plan = request.config_dict[CONFIG].current.plan
    return AgentCallState.from_params(request.query, lang=plan.default_language)


async def _event(request: web.Request, hook: AgentHook) -> AgentEvent:
    webhook = request[WEBHOOK]
    state = _state(request)
    digits = webhook.digits or ""
    match hook:
        case AgentHook.ID:
            return AgentIdEntered(digits)
        case AgentHook.PIN:
            return PinChecked(await _pin_ok(request, state, digits.strip("#")))
        case AgentHook.NEXT:
            if digits:
                return LogOut()
            return NextCaller(await _claim(request, state))
        case AgentHook.CONNECT:
            return CallerTaken(await _take(request, state))
        case AgentHook.TAKEN:
            return IntoAgentQueue()
        case AgentHook.HOLD:
            return HoldingForAgent()
        case AgentHook.BACK:
            return LeftAgentQueue(webhook.queue_exit or QueueExit.ERROR)
        case AgentHook.GREET:
            return Connected(webhook.call_sid or "")
        case AgentHook.AFTER:
            return DialEnded(webhook.dial_status or "failed")
        case AgentHook.WRAP:
            return OutcomeKeyed(digits)


async def _pin_ok(request: web.Request, state: AgentCallState, pin: str) -> bool:
    """The PIN is the agent's, and neither the agent id keyed nor the calling number is
    locked out (hotline/auth/lockout.py). A locked attempt is refused as a wrong PIN is, the
    PIN unchecked, and counts as one: a number that keeps guessing stays locked."""
    agents = request.config_dict[AGENTS]
    caller = request[WEBHOOK].caller
    keyed, number, now = state.agent or "", str(caller), request.config_dict[CLOCK]()
    since = now - PIN_LOCKOUT.lookback
    attempt, by_agent, by_number = await agents.pin_attempt(keyed, number, now, since=since)
    locked = _locked(by_agent, by_number, now)
    if locked is None:
        agent = (await directory(request)).get(keyed)
        # A hash check takes tens of milliseconds: not on the event loop.
        if agent is not None and await asyncio.to_thread(verify_pin, pin, agent.pin_hash):
            await agents.forget_pin_attempt(attempt)
            return True
        log.warning("agent_login_failed", agent=state.agent, attempt=state.tries + 1)
    until = locked or _locked([*by_agent, now], [*by_number, now], now)
    if until is not None:
        reason = "refused" if locked else "failures"  # refused while locked, or locked now
        log.warning(
            "agent_pin_locked",
            agent=state.agent,
            caller=caller,
            until=until.isoformat(),
            reason=reason,
        )
    return False


def _locked(by_agent: list[datetime], by_number: list[datetime], now: datetime) -> datetime | None:
    """Until when the agent id or the number is locked (the later of the two), if it is."""
    ends = [locked_until(failures, now, PIN_LOCKOUT) for failures in (by_agent, by_number)]
    return max((end for end in ends if end is not None), default=None)


async def _claim(request: web.Request, state: AgentCallState) -> CallerForAgent | None:
    agent = (await directory(request)).get(state.agent or "")
    if agent is None or MEMBERS not in request.config_dict:
        return None  # without the REST API no caller could be taken for the agent
    claimed = await request.config_dict[AGENTS].claim_next(agent, request.config_dict[CLOCK]())
    if claimed is None:
        return None
    return CallerForAgent(claimed.call_sid, claimed.desk, claimed.ticket, claimed.transcript)


async def _take(request: web.Request, state: AgentCallState) -> Taken:
    """Take the caller this agent claimed out of the desk's queue, by name, into the
    agent's own (the TwiML of the TAKEN hook, run on the caller's call)."""
    agents = request.config_dict[AGENTS]
    if not state.agent or not state.caller:
        return Taken.GONE
    queue_sid = await agents.claimed_queue(state.agent, state.caller)
    if queue_sid is None:
        return Taken.GONE  # left the queue, or the claim was given back meanwhile
    base = public_base(request, request.config_dict[SETTINGS].public_url)
    url = absolute(base, AgentTarget(AgentHook.TAKEN, state))
    try:
        await request.config_dict[MEMBERS].take(queue_sid, state.caller, url)
    except TakeError as exc:
        log.warning("caller_not_taken", agent=state.agent, call_sid=state.caller, error=str(exc))
        if not exc.gone:
            return Taken.FAILED  # the claim is given back as the agent is ready again
        await agents.gone(state.caller, request.config_dict[CLOCK]())
        return Taken.GONE
    return Taken.YES


async def _answer(request: web.Request, event: AgentEvent, route: str) -> web.Response:
    config = request.config_dict[CONFIG].current
    staffing = config.staffing
    state = _state(request)
    _, actions = agent_step(
        config.plan,
        state,
        event,
        idle_recheck_s=staffing.idle_recheck_s,
        wrap_up_s=staffing.wrap_up_s,
    )
    await _apply(request, state, actions)
    log.info("webhook", route=route, call_sid=request[WEBHOOK].call_sid, agent=state.agent)
    verbs: list[Action] = [a for a in actions if not isinstance(a, AgentChange | CallerTicket)]
    return twiml_response(request, config.plan, verbs)


async def _apply(
    request: web.Request, state: AgentCallState, actions: Sequence[AgentAction]
) -> None:
    now = request.config_dict[CLOCK]()
    own_call = request[WEBHOOK].call_sid
    for action in actions:
        match action:
            case AgentChange(state=new_state, note=note, caller=caller) if state.agent:
                await request.config_dict[AGENTS].set_state(
                    state.agent, new_state, now, note, call_sid=own_call, caller_sid=caller
                )
                if new_state in (AgentState.READY, AgentState.OFFLINE):
                    await request.config_dict[AGENTS].release(state.agent)
            case CallerTicket(call_sid=caller_sid, change=change) if caller_sid:
                await _caller_ticket(request, caller_sid, change)


async def _caller_ticket(request: web.Request, caller_sid: str, change: TicketChange) -> None:
    # The caller's ticket exists (the caller's own webhooks made it): only its call id is
    # needed. Keyed by the agent's webhook, so a retry of it is written once.
    call = CallRef(caller_sid, "unknown", "unknown")
    retry = request[WEBHOOK].retry_token or uuid.uuid4().hex
    try:
        await request.config_dict[TICKETS].record(
            call, [change], request.config_dict[CLOCK](), key=operation_key(caller_sid, retry)
        )
    except Exception:
        log.exception("ticket_write_failed", call_sid=caller_sid, changes=[change.note])
