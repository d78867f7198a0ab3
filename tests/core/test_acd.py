"""Who an agent gets next, and the agent's call flow: pure, no HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casework.tickets import TicketStatus
from hotline.auth.lockout import PIN_LOCKOUT, LockoutRule, locked_until
from hotline.auth.pins import hash_pin, is_pin_hash, verify_pin
from ivr.actions import (
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
)
from ivr.agent import (
    HOLD_ROUNDS,
    MAX_PIN_TRIES,
    AgentCalled,
    AgentChange,
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
from ivr.events import QueueLeft
from ivr.flow import step
from ivr.model import IvrPlan
from ivr.state import AgentCallState, CallState
from routing.acd import Agent, AgentState, DeskLevel, Waiting, next_caller
from routing.queue_router import QueueExit

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
AGENT = Agent(
    "1001",
    "王芳",
    "+8613800000001",
    "x",
    {
        "tax-invoice": DeskLevel.PRIMARY,
        "tax-filing": DeskLevel.PRIMARY,
        "tax-refund": DeskLevel.BACKUP,
    },
)


def waiting(sid: str, desk: str, minutes_ago: int, callback: bool = False) -> Waiting:
    return Waiting(sid, desk, f"desk-{desk}", T0 - timedelta(minutes=minutes_ago), callback)


def test_longest_waiting_first_across_the_agents_desks() -> None:
    queue = [
        waiting("a", "tax-invoice", 2),
        waiting("b", "tax-filing", 5),
        waiting("c", "general", 9),
    ]
    assert next_caller(AGENT, queue) == queue[1]


def test_callbacks_before_first_time_callers() -> None:
    queue = [waiting("a", "tax-invoice", 9), waiting("b", "tax-filing", 1, callback=True)]
    assert next_caller(AGENT, queue) == queue[1]


def test_backup_desk_only_when_primary_queues_are_empty() -> None:
    backup = waiting("r", "tax-refund", 30)
    assert next_caller(AGENT, [backup, waiting("a", "tax-invoice", 1)]).call_sid == "a"  # type: ignore[union-attr]
    assert next_caller(AGENT, [backup]) == backup
    assert next_caller(AGENT, [waiting("g", "general", 30)]) is None


def test_pins_are_salted_hashes() -> None:
    stored = hash_pin("1234")
    assert is_pin_hash(stored) and "1234" not in stored
    assert verify_pin("1234", stored) and not verify_pin("1235", stored)
    assert hash_pin("1234") != stored  # a new salt every time
    assert not verify_pin("1234", "plain-text") and not verify_pin("1234", "pbkdf2_sha256$x$y$z")


def said(actions: tuple[object, ...]) -> str:
    out = []
    for a in actions:
        if isinstance(a, Say):
            out.append(a.text)
        if isinstance(a, Gather):
            out.extend(p.text for p in a.prompt if isinstance(p, Say))
    return " ".join(out)


def test_login_then_the_next_caller_with_a_whisper(plan: IvrPlan) -> None:
    state = AgentCallState(lang="zh")
    state, actions = agent_step(plan, state, AgentCalled())
    assert plan.prompts.agent_login["zh"] in said(actions) and isinstance(actions[0], Gather)
    state, actions = agent_step(plan, state, AgentIdEntered("1001#"))
    assert state.agent == "1001" and plan.prompts.agent_pin["zh"] in said(actions)
    state, actions = agent_step(plan, state, PinChecked(True))
    assert AgentChange(AgentState.READY, "logged in") in actions
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is AgentHook.NEXT
    caller = CallerForAgent(
        "CA" + "1" * 32,
        "tax-invoice",
        "E20261130-000042",
        "我们 开 出去 的 专 票",
    )
    state, actions = agent_step(plan, state, NextCaller(caller))
    invoices = plan.specialties["tax-invoice"].name["zh"]
    whisper = plan.prompts.agent_whisper["zh"].format(desk=invoices, ticket="0 0 0 0 4 2")
    assert whisper in said(actions)
    assert plan.prompts.agent_said["zh"].format(words="我们 开 出去 的 专 票") in said(actions)
    # After the whisper, the chosen caller is taken for this agent (not the queue's front).
    assert not any(isinstance(a, Dial) for a in actions)
    assert actions[-1] == Redirect(AgentTarget(AgentHook.CONNECT, state))
    assert (state.caller, state.desk) == (caller.call_sid, "tax-invoice")
    # Taken: the agent dials its own queue, where only that caller waits.
    _, actions = agent_step(plan, state, CallerTaken(Taken.YES))
    [dial] = actions
    assert isinstance(dial, Dial) and dial.queue == "agent-1001"
    assert (dial.done.hook, dial.greet.hook) == (AgentHook.AFTER, AgentHook.GREET)
    # Gone meanwhile (or not taken): ready again, the next caller.
    for outcome in (Taken.GONE, Taken.FAILED):
        back, actions = agent_step(plan, state, CallerTaken(outcome))
        assert back.caller is None and back.desk is None
        assert actions[0] == AgentChange(AgentState.READY, f"caller not taken: {outcome.value}")
        assert actions[-1] == Redirect(AgentTarget(AgentHook.NEXT, back))


def test_the_taken_caller_waits_for_the_agent_a_few_rounds_then_goes_back(plan: IvrPlan) -> None:
    connecting = AgentCallState(lang="zh", agent="1001", caller="CA" + "3" * 32, desk="tax-invoice")
    held, actions = agent_step(plan, connecting, IntoAgentQueue())
    assert actions == (
        Enqueue(
            "agent-1001",
            done=AgentTarget(AgentHook.BACK, held),
            wait=AgentTarget(AgentHook.HOLD, held),
        ),
    )
    rounds = 0
    while True:
        held, actions = agent_step(plan, held, HoldingForAgent())
        if actions == (Leave(),):
            break
        rounds += 1
        assert isinstance(actions[0], Pause) and actions[-1] == Redirect(
            AgentTarget(AgentHook.HOLD, held)
        )
    assert rounds == HOLD_ROUNDS
    # Connected and talked, or hung up: the caller's call ends there.
    for result in (QueueExit.BRIDGED, QueueExit.HANGUP):
        assert agent_step(plan, held, LeftAgentQueue(result))[1] == (Hangup(),)
    # The agent never came: back to the caller's desk, counted as a new stay in its queue.
    _, actions = agent_step(plan, held, LeftAgentQueue(QueueExit.LEAVE))
    ticket, redirect = actions
    assert isinstance(ticket, CallerTicket) and ticket.call_sid == "CA" + "3" * 32
    assert ticket.change.status is TicketStatus.ROUTED
    desk = CallState(lang="zh", node=plan.root, desk="tax-invoice")
    assert redirect == Redirect(Target(Hook.ROUTE, desk))


def test_a_caller_taken_for_an_agent_needs_no_answer_of_the_queue_action(plan: IvrPlan) -> None:
    """The carrier requests the Enqueue action at once when the caller is taken out of the
    queue through its REST API, and runs the agent's connection instead of the answer."""
    holding = CallState(lang="zh", node=plan.root, desk="tax-invoice", queue="desk-tax-invoice")
    assert step(plan, holding, QueueLeft(QueueExit.REDIRECTED)) == (holding, ())


def test_idle_agent_holds_then_looks_again(plan: IvrPlan) -> None:
    state = AgentCallState(lang="zh", agent="1001")
    state, actions = agent_step(plan, state, NextCaller(None), idle_recheck_s=7)
    gather = next(a for a in actions if isinstance(a, Gather))
    assert plan.prompts.agent_idle["zh"] in said(actions) and gather.timeout_s == 7
    assert gather.target.hook is AgentHook.NEXT and isinstance(actions[-1], Redirect)
    state, actions = agent_step(plan, state, NextCaller(None), idle_recheck_s=7)
    assert plan.prompts.agent_idle["zh"] not in said(actions)  # said once, not every round
    _, actions = agent_step(plan, state, LogOut())
    assert AgentChange(AgentState.OFFLINE, "logged out") in actions
    assert isinstance(actions[-1], Hangup)


def test_wrong_pin_three_times_ends_the_call(plan: IvrPlan) -> None:
    state = AgentCallState(lang="zh", agent="1001")
    for attempt in range(1, MAX_PIN_TRIES):
        state, actions = agent_step(plan, state, PinChecked(False))
        assert state.tries == attempt and plan.prompts.agent_wrong["zh"] in said(actions)
        state = AgentCallState(lang="zh", agent="1001", tries=state.tries)
    _, actions = agent_step(plan, state, PinChecked(False))
    assert isinstance(actions[-1], Hangup) and plan.prompts.agent_locked["zh"] in said(actions)


def test_greet_records_who_answered_and_wrap_up_sets_the_outcome(plan: IvrPlan) -> None:
    state = AgentCallState(lang="zh", agent="1001", caller="CA" + "2" * 32)
    _, actions = agent_step(plan, state, Connected("CA" + "2" * 32))
    ticket = next(a for a in actions if isinstance(a, CallerTicket))
    assert ticket.change.answered_by == "1001" and ticket.call_sid == "CA" + "2" * 32
    assert ticket.change.status is TicketStatus.ANSWERED
    assert ticket.change.queue_result is QueueExit.BRIDGED
    _, actions = agent_step(plan, state, DialEnded("completed"), wrap_up_s=25)
    assert AgentChange(AgentState.WRAP_UP, "call ended", state.caller) in actions
    assert next(a for a in actions if isinstance(a, Gather)).timeout_s == 25
    ready, actions = agent_step(plan, state, OutcomeKeyed("2"))
    outcome = next(a for a in actions if isinstance(a, CallerTicket))
    assert outcome.change.outcome == "forwarded" and ready.caller is None
    _, actions = agent_step(plan, state, DialEnded("no-answer"))
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is AgentHook.NEXT


def test_desk_metrics_for_the_day() -> None:
    from routing.queue_stats import QueueStay, desk_metrics

    s = timedelta(seconds=1)
    stays = [
        # answered after 10 s, handled 100 s
        QueueStay("tax-invoice", T0, T0 + 110 * s, "bridged", T0 + 10 * s, T0 + 110 * s),
        # answered after 40 s (outside a 20 s service level), not wrapped yet
        QueueStay("tax-invoice", T0, T0 + 50 * s, "bridged", T0 + 40 * s, None),
        # gave up after 30 s
        QueueStay("tax-invoice", T0, T0 + 30 * s, "hangup", None, None),
        # still waiting
        QueueStay("tax-invoice", T0, None, None, None, None),
        QueueStay("general", T0, T0 + 5 * s, "leave", None, None),
    ]
    figures = desk_metrics(stays, service_level_s=20)
    invoice = figures["tax-invoice"]
    assert (invoice.offered, invoice.answered, invoice.abandoned) == (4, 2, 1)
    assert invoice.service_level == 0.25  # one of four offered answered within 20 s
    assert invoice.average_speed_of_answer_s == 25.0
    assert invoice.average_handle_time_s == 100.0
    assert invoice.abandoned_after_s == 30.0
    general = figures["general"]
    assert (general.offered, general.answered, general.abandoned) == (1, 0, 0)
    assert general.average_speed_of_answer_s is None


def test_an_overdue_caller_at_a_backup_desk_counts_as_primary() -> None:
    general_first = Agent(
        "1002", "b", "+86", "x", {"general": DeskLevel.PRIMARY, "tax-invoice": DeskLevel.BACKUP}
    )
    late = waiting("g", "general", 1)
    long_waiting = waiting("t", "tax-invoice", 9)
    assert next_caller(general_first, [late, long_waiting]) == late
    overdue = Waiting("t", "tax-invoice", "desk-tax-invoice", long_waiting.joined_at, overdue=True)
    assert next_caller(general_first, [late, overdue]) == overdue


def test_a_failed_agent_webhook_never_puts_the_agent_in_a_callers_queue(plan: IvrPlan) -> None:
    logged_in = AgentCallState(lang="zh", agent="1001", caller="CA" + "5" * 32)
    for hook in AgentHook:
        _, actions = agent_rescue(plan, logged_in, hook, idle_recheck_s=7)
        assert not any(isinstance(a, Enqueue | Dial) for a in actions), hook
    # The caller's leg, just before the connection: nothing, so the connection goes ahead.
    assert agent_rescue(plan, logged_in, AgentHook.GREET)[1] == ()
    # Elsewhere on the caller's leg: never left in the agent's queue.
    assert agent_rescue(plan, logged_in, AgentHook.HOLD)[1] == (Leave(),)
    back = agent_rescue(plan, logged_in, AgentHook.BACK, result=QueueExit.ERROR)[1]
    general = CallState(lang="zh", node=plan.root, desk=plan.general_desk)
    assert back == (Redirect(Target(Hook.ROUTE, general)),)
    assert agent_rescue(plan, logged_in, AgentHook.BACK, result=QueueExit.BRIDGED)[1] == (Hangup(),)
    # A logged-in agent keeps the line and looks for the next caller after a pause.
    again, actions = agent_rescue(plan, logged_in, AgentHook.NEXT, idle_recheck_s=7)
    assert again.caller is None
    assert actions == (Pause(7), Redirect(AgentTarget(AgentHook.NEXT, again)))
    # A login that could not be completed: an apology, the end of the call.
    for login in (None, AgentHook.ID, AgentHook.PIN):
        _, actions = agent_rescue(plan, AgentCallState(lang="en"), login)
        assert said(actions) == plan.prompts.agent_system_error["en"]
        assert isinstance(actions[-1], Hangup)


def test_five_wrong_pins_within_fifteen_minutes_lock_for_fifteen() -> None:
    minute = timedelta(minutes=1)
    rule = PIN_LOCKOUT
    assert (rule.failures, rule.within, rule.lock_for) == (5, 15 * minute, 15 * minute)
    four = [T0 + i * minute for i in range(4)]
    assert locked_until(four, T0 + 4 * minute, rule) is None
    five = [*four, T0 + 14 * minute]
    assert locked_until(five, T0 + 14 * minute, rule) == T0 + 29 * minute
    assert locked_until(five, T0 + 29 * minute - timedelta(seconds=1), rule) is not None
    assert locked_until(five, T0 + 29 * minute, rule) is None  # over
    # Spread out: never five within 15 minutes.
    spread = [T0 + i * 4 * minute for i in range(8)]
    assert locked_until(spread, T0 + 40 * minute, rule) is None
    # Guessing on while locked keeps it locked: each attempt counts.
    on = [*five, T0 + 20 * minute, T0 + 28 * minute]
    assert locked_until(on, T0 + 30 * minute, rule) == T0 + 43 * minute
    # Failures not yet made (a later clock's) are not counted.
    assert locked_until(five, T0 + 3 * minute, rule) is None
    assert locked_until([], T0, LockoutRule(failures=1)) is None
    assert locked_until([T0], T0, LockoutRule(failures=1)) == T0 + 15 * minute
