"""The agent's side: log in by keys, take the next caller, key the outcome, again.

`agent_step(plan, state, event) -> (state, actions)`, pure like the caller's flow. Checking
the PIN and claiming a caller happen at the edge (a hash, the shared queue view); their
results arrive here as events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ivr.actions import (
    Action,
    AgentHook,
    AgentTarget,
    Dial,
    Gather,
    Hangup,
    Pause,
    Redirect,
    Say,
    TicketChange,
    say,
)
from ivr.model import IvrPlan, Text
from ivr.state import AgentCallState
from routing.acd import AgentState, Outcome

MAX_PIN_TRIES = 3
OUTCOME_KEYS = {"1": Outcome.ANSWERED, "2": Outcome.FORWARDED, "3": Outcome.CALLBACK}


@dataclass(frozen=True)
class CallerForAgent:
    call_sid: str
    desk: str
    queue: str
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
            return _connect(plan, state, caller)
        case Connected(caller_sid=caller_sid):
            note = f"answered by agent {state.agent}"
            answered = TicketChange(note=note, answered_by=state.agent)
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
    plan: IvrPlan, state: AgentCallState, hook: AgentHook | None, *, idle_recheck_s: int = 10
) -> tuple[AgentCallState, tuple[Action, ...]]:
    """Where an agent's call goes when handling `hook` broke (the database away, say):
    never into a callers' queue, never a dead end.

    On the caller's leg, just before the two are connected (`GREET`): nothing, so the
    connection goes ahead. A logged-in agent keeps the line and looks again after a
    pause, as when nobody waits. A login that could not be completed ends with an
    apology: the agent calls again.
    """
    if hook is AgentHook.GREET:
        return state, ()
    if hook in (AgentHook.NEXT, AgentHook.AFTER, AgentHook.WRAP) and state.agent:
        again = replace(state, caller=None)
        return again, (
            Pause(idle_recheck_s),
            Redirect(AgentTarget(AgentHook.NEXT, again)),
        )
    return state, (say(state.lang, plan.prompts.agent_system_error), Hangup())


def _connect(
    plan: IvrPlan, state: AgentCallState, caller: CallerForAgent
) -> tuple[AgentCallState, tuple[AgentAction, ...]]:
    lang = state.lang
    connected = replace(state, caller=caller.call_sid, waits=0)
    spec = plan.specialties.get(caller.desk)
    desk = spec.display_name(lang) if spec else caller.desk
    # The whisper: said to the agent before the Dial, so only the agent hears it.
    whisper = plan.prompts.agent_whisper[lang].format(
        desk=desk, ticket=" ".join(caller.ticket[-6:])
    )
    if caller.transcript:
        whisper += " " + plan.prompts.agent_said[lang].format(words=caller.transcript[:40])
    return connected, (
        AgentChange(AgentState.ON_CALL, f"connecting {caller.ticket}", caller.call_sid),
        Say(whisper, lang),
        Dial(
            caller.queue,
            AgentTarget(AgentHook.AFTER, connected),
            AgentTarget(AgentHook.GREET, connected),
        ),
    )


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
