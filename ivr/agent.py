"""The agent's side: log in by keys, take the next caller, key the outcome, again.

`agent_step(plan, state, event) -> (state, actions)`, pure like the caller's flow. Checking
the PIN and claiming a caller happen at the edge (a hash, the shared queue view); their
results arrive here as events.

Connecting the caller the service chose (routing/acd.py), not the front of a desk's queue:
after the whisper (CONNECT) the edge takes that caller out of the desk's queue by name,
into the agent's own queue (TAKEN, on the caller's leg), and the agent's <Dial> takes the
one caller there. If the agent never comes, the caller's hold there (HOLD) runs out and
the caller goes back to the desk (BACK); if the caller never comes, the <Dial> times out
and the agent is looked for a caller again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from casework.tickets import TicketStatus
from ivr.actions import (
    Action,
    AgentHook,
    AgentTarget,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Hook,
    Leave,
    Pause,
    Redirect,
    Say,
    Target,
    TicketChange,
    say,
)
from ivr.model import IvrPlan, Text
from ivr.state import AgentCallState, CallState
from routing.acd import AgentState, Outcome
from routing.queue_router import QueueExit

MAX_PIN_TRIES = 3
OUTCOME_KEYS = {"1": Outcome.ANSWERED, "2": Outcome.FORWARDED, "3": Outcome.CALLBACK}
# How long the agent's <Dial> waits for the taken caller to arrive in the agent's queue,
# and how long the caller holds there for the agent (a little longer): both a few seconds
# in practice, these bound what a hang-up in between leaves waiting.
CONNECT_TIMEOUT_S = 20
HOLD_ROUND_S = 5
HOLD_ROUNDS = 5


def agent_queue(agent: str) -> str:
    """The agent's own queue: only the caller taken for this agent ever waits in it."""
    return f"agent-{agent}"


class Taken(StrEnum):
    """How taking the chosen caller out of the desk's queue went."""

    YES = "taken"
    GONE = "gone"  # the caller is no longer in the queue (hung up, or left it)
    FAILED = "failed"  # the carrier's API failed: the caller still waits


@dataclass(frozen=True)
class CallerForAgent:
    call_sid: str
    desk: str
    ticket: str
    transcript: str | None


@dataclass(frozen=True)
class AgentCalled:
    pass


@dataclass(frozen=True)
class AgentIdEntered:
    digits: str


@dataclass(frozen=True)
class PinChecked:
    ok: bool


@dataclass(frozen=True)
class NextCaller:
    found: CallerForAgent | None


@dataclass(frozen=True)
class LogOut:
    """A key pressed while waiting for the next caller."""


@dataclass(frozen=True)
class CallerTaken:
    """After the whisper: the edge tried to take the chosen caller for this agent."""

    outcome: Taken


@dataclass(frozen=True)
class IntoAgentQueue:
    """The caller's leg, taken out of the desk's queue: now into the agent's."""


@dataclass(frozen=True)
class HoldingForAgent:
    """The caller's leg, a round of hold in the agent's queue."""


@dataclass(frozen=True)
class LeftAgentQueue:
    """The caller's leg: the stay in the agent's queue is over."""

    result: QueueExit


@dataclass(frozen=True)
class Connected:
    """The Queue url on the caller's leg: this agent is taking this caller."""

    caller_sid: str


@dataclass(frozen=True)
class DialEnded:
    status: str  # how the dial to the caller ended: completed, busy, no-answer, ...


@dataclass(frozen=True)
class OutcomeKeyed:
    digits: str


AgentEvent = (
    AgentCalled
    | AgentIdEntered
    | PinChecked
    | NextCaller
    | LogOut
    | CallerTaken
    | IntoAgentQueue
    | HoldingForAgent
    | LeftAgentQueue
    | Connected
    | DialEnded
    | OutcomeKeyed
)


@dataclass(frozen=True)
class AgentChange:
    state: AgentState
    note: str
    caller: str | None = None


@dataclass(frozen=True)
class CallerTicket:
    """A change to the ticket of another call (the caller's), made from the agent's call."""

    call_sid: str
    change: TicketChange


AgentAction = Action | AgentChange | CallerTicket


def agent_step(
    plan: IvrPlan,
    state: AgentCallState,
    event: AgentEvent,
    *,
    idle_recheck_s: int = 10,
    wrap_up_s: int = 30,
) -> tuple[AgentCallState, tuple[AgentAction, ...]]:
    p = plan.prompts
    lang = state.lang
    match event:
        case AgentCalled():
            return state, _ask(plan, state, AgentHook.ID, p.agent_login)
        case AgentIdEntered(digits=digits):
            entered = replace(state, agent=digits.strip("#") or None)
            return entered, _ask(plan, entered, AgentHook.PIN, p.agent_pin)
        case PinChecked(ok=True):
            ready = replace(state, tries=0)
            return ready, (
                AgentChange(AgentState.READY, "logged in"),
                say(lang, p.agent_ready),
                Redirect(AgentTarget(AgentHook.NEXT, ready)),
            )
        case PinChecked(ok=False):
            tries = state.tries + 1
            if tries >= MAX_PIN_TRIES:
                return state, (say(lang, p.agent_locked), Hangup())
            again = AgentCallState(lang=lang, tries=tries)
            return again, (
                say(lang, p.agent_wrong),
                *_ask(plan, again, AgentHook.ID, p.agent_login),
            )
        case NextCaller(found=None):
            idle = replace(state, waits=state.waits + 1, caller=None)
            said = () if state.waits else (say(lang, p.agent_idle),)
            # The wait is the carrier's: a silent Gather for its timeout (a key logs out),
            # then the next look. No loop runs on the server.
            return idle, (
                Gather(said, AgentTarget(AgentHook.NEXT, idle), idle_recheck_s),
                Redirect(AgentTarget(AgentHook.NEXT, idle)),
            )
        case LogOut():
            return state, (
                AgentChange(AgentState.OFFLINE, "logged out"),
                say(lang, p.agent_bye),
                Hangup(),
            )
        case NextCaller(found=caller) if caller is not None:
            return _whisper(plan, state, caller)
        case CallerTaken(outcome=Taken.YES) if state.agent:
            return state, (
                Dial(
                    agent_queue(state.agent),
                    AgentTarget(AgentHook.AFTER, state),
                    AgentTarget(AgentHook.GREET, state),
                    CONNECT_TIMEOUT_S,
                ),
            )
        case CallerTaken(outcome=outcome):
            # Gone while the agent heard the whisper, or not taken: the next one.
            back = replace(state, caller=None, desk=None)
            return back, (
                AgentChange(AgentState.READY, f"caller not taken: {outcome.value}"),
                Redirect(AgentTarget(AgentHook.NEXT, back)),
            )
        case IntoAgentQueue() if state.agent:
            held = replace(state, waits=0)
            return held, (
                Enqueue(
                    agent_queue(state.agent),
                    done=AgentTarget(AgentHook.BACK, held),
                    wait=AgentTarget(AgentHook.HOLD, held),
                ),
            )
        case IntoAgentQueue():
            return _back_to_desk(plan, state)
        case HoldingForAgent() if state.waits >= HOLD_ROUNDS:
            return state, (Leave(),)  # the agent never came: back to the desk
        case HoldingForAgent():
            more = replace(state, waits=state.waits + 1)
            return more, (Pause(HOLD_ROUND_S), Redirect(AgentTarget(AgentHook.HOLD, more)))
        case LeftAgentQueue(result=QueueExit.BRIDGED | QueueExit.HANGUP):
            return state, (Hangup(),)  # the conversation is over, or the caller hung up
        case LeftAgentQueue():
            return _back_to_desk(plan, state)
        case Connected(caller_sid=caller_sid):
            note = f"answered by agent {state.agent}"
            answered = TicketChange(
                note=note,
                status=TicketStatus.ANSWERED,
                queue_result=QueueExit.BRIDGED,
                answered_by=state.agent,
            )
            return state, (CallerTicket(caller_sid, answered), say(lang, p.agent_greet_caller))
        case DialEnded(status=status) if status != "completed":
            # Nobody was there after all (the caller hung up first): the next one.
            back = replace(state, caller=None)
            return back, (
                AgentChange(AgentState.READY, f"dial {status}"),
                Redirect(AgentTarget(AgentHook.NEXT, back)),
            )
        case DialEnded():
            return state, (
                AgentChange(AgentState.WRAP_UP, "call ended", state.caller),
                Gather((say(lang, p.agent_wrap),), AgentTarget(AgentHook.WRAP, state), wrap_up_s),
                Redirect(AgentTarget(AgentHook.WRAP, state)),
            )
        case OutcomeKeyed(digits=digits):
            return _wrapped(state, OUTCOME_KEYS.get(digits.strip()))
    raise AssertionError(f"unhandled agent event {event!r}")  # pragma: no cover


def agent_rescue(
    plan: IvrPlan,
    state: AgentCallState,
    hook: AgentHook | None,
    *,
    idle_recheck_s: int = 10,
    result: QueueExit | None = None,
) -> tuple[AgentCallState, tuple[Action, ...]]:
    """Where an agent's call goes when handling `hook` broke (the database away, say):
    never into a callers' queue, never a dead end.

    On the caller's leg, just before the two are connected (`GREET`): nothing, so the
    connection goes ahead; elsewhere on the caller's leg the caller is never left in the
    agent's queue: back to the desk (or, the stay over, the end). A logged-in agent keeps
    the line and looks again after a pause, as when nobody waits. A login that could not
    be completed ends with an apology: the agent calls again.
    """
    if hook is AgentHook.GREET:
        return state, ()
    if hook is AgentHook.HOLD:
        return state, (Leave(),)
    if hook is AgentHook.BACK and result in (QueueExit.BRIDGED, QueueExit.HANGUP):
        return state, (Hangup(),)
    if hook in (AgentHook.TAKEN, AgentHook.BACK):
        return state, (Redirect(_desk_route(plan, state)),)
    if hook in (AgentHook.NEXT, AgentHook.CONNECT, AgentHook.AFTER, AgentHook.WRAP) and (
        state.agent
    ):
        again = replace(state, caller=None, desk=None)
        return again, (
            Pause(idle_recheck_s),
            Redirect(AgentTarget(AgentHook.NEXT, again)),
        )
    return state, (say(state.lang, plan.prompts.agent_system_error), Hangup())


def _whisper(
    plan: IvrPlan, state: AgentCallState, caller: CallerForAgent
) -> tuple[AgentCallState, tuple[AgentAction, ...]]:
    lang = state.lang
    connected = replace(state, caller=caller.call_sid, desk=caller.desk, waits=0)
    spec = plan.specialties.get(caller.desk)
    desk = spec.display_name(lang) if spec else caller.desk
    # The whisper: said to the agent before the Dial, so only the agent hears it.
    whisper = plan.prompts.agent_whisper[lang].format(
        desk=desk, ticket=" ".join(caller.ticket[-6:])
    )
    if caller.transcript:
        whisper += " " + plan.prompts.agent_said[lang].format(words=caller.transcript[:40])
    # Then the caller is taken for the agent (CONNECT): a caller who hangs up meanwhile
    # costs the agent nothing but the whisper.
    return connected, (
        AgentChange(AgentState.ON_CALL, f"connecting {caller.ticket}", caller.call_sid),
        Say(whisper, lang),
        Redirect(AgentTarget(AgentHook.CONNECT, connected)),
    )


def _back_to_desk(
    plan: IvrPlan, state: AgentCallState
) -> tuple[AgentCallState, tuple[AgentAction, ...]]:
    """The caller's leg, not connected to the agent after all: routed to the desk again
    (the ticket leaves the queue view, so the new stay is counted from now)."""
    route = _desk_route(plan, state)
    actions: list[AgentAction] = []
    if state.caller:
        note = f"not connected to agent {state.agent}: back to the {route.state.desk} desk"
        actions.append(CallerTicket(state.caller, TicketChange(note, status=TicketStatus.ROUTED)))
    actions.append(Redirect(route))
    return state, tuple(actions)


def _desk_route(plan: IvrPlan, state: AgentCallState) -> Target:
    """The caller's own flow again, at routing to the caller's desk (or the general one)."""
    desk = state.desk if state.desk in plan.specialties else plan.general_desk
    return Target(Hook.ROUTE, CallState(lang=state.lang, node=plan.root, desk=desk))


def _wrapped(
    state: AgentCallState, outcome: Outcome | None
) -> tuple[AgentCallState, tuple[AgentAction, ...]]:
    actions: list[AgentAction] = []
    if state.caller:
        if outcome is not None:
            note = f"outcome {outcome.value} by agent {state.agent}"
        else:
            note = f"wrap-up by agent {state.agent} ended without an outcome"
        change = TicketChange(note=note, outcome=outcome.value if outcome else None, wrapped=True)
        actions.append(CallerTicket(state.caller, change))
    ready = replace(state, caller=None)
    actions += [
        AgentChange(AgentState.READY, f"wrap-up done: {outcome.value if outcome else 'none'}"),
        Redirect(AgentTarget(AgentHook.NEXT, ready)),
    ]
    return ready, tuple(actions)


def _ask(
    plan: IvrPlan, state: AgentCallState, hook: AgentHook, prompt: Text
) -> tuple[AgentAction, ...]:
    """Keys ended by #; silence ends the call (an agent line needs no hand-holding)."""
    gather = Gather(
        (say(state.lang, prompt),),
        AgentTarget(hook, state),
        plan.dialogue.gather_timeout_s,
        num_digits=8,
        finish_on_key="#",
    )
    return (gather, say(state.lang, plan.prompts.agent_locked), Hangup())
