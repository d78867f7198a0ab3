"""Agents answer the desks: login, the next caller, whisper, wrap-up; through the real
webhooks, a caller and an agent on the line at once."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from casework.tickets import TicketStatus
from hotline.carrier.callers import (
    BridgeEnd,
    Heard,
    QueueChoice,
    QueuePlan,
    Recording,
    ScriptedCaller,
)
from hotline.carrier.carrier import CallRecord
from hotline.config import load_config
from hotline.store.agents import AgentStore
from hotline.store.engine import make_engine, upgrade
from hotline.store.tickets import CallRef, TicketStore
from hotline.twilio.urls import absolute
from hotline.web.keys import DISPATCHER
from ivr.actions import AgentHook, AgentTarget, TicketChange
from ivr.model import IvrPlan
from ivr.state import AgentCallState
from routing.acd import Agent, DeskLevel
from routing.queue_router import QueueExit
from routing.queue_stats import desk_metrics
from tests.support.line import PUBLIC_URL, Line, running_line
from tests.support.paths import CONFIG_DIR
from tests.support.waiting import eventually

AGENT_NUMBER = "+8613800000001"
# What agents hear, from the shipped config (the wording is not what these tests are about).
PLAN = load_config(CONFIG_DIR).plan
INVOICES = PLAN.specialties["tax-invoice"].name["zh"]
WHISPER_START = PLAN.prompts.agent_whisper["zh"].split("{ticket}")[0].format(desk=INVOICES)
HOTLINE_NUMBER = "+861012345000"


@pytest.fixture
async def line(db_url: str) -> AsyncIterator[Line]:
    async with running_line(db_url) as running:
        yield running


def waiting_caller(keys: list[str]) -> ScriptedCaller:
    # Holds until an agent takes the call (or gives up after 20 s of real time).
    return ScriptedCaller(keys=keys, queue=QueuePlan(then=QueueChoice.HANGUP, patience=20))


def agent(keys: list[str | None], hangs_up: str = "caller") -> ScriptedCaller:
    return ScriptedCaller(keys=keys, bridge=BridgeEnd(hangs_up=hangs_up, talk_seconds=40))  # type: ignore[arg-type]


async def agent_call(
    line: Line, caller: ScriptedCaller, from_number: str = AGENT_NUMBER, via: str | None = None
) -> CallRecord:
    return await line.carrier.place_call(
        caller,
        from_number=from_number,
        voice_path="/twilio/agent",
        status_path="/twilio/agent-status",
        via=via,
    )


def events(line: Line, name: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, line.log.getvalue().splitlines()) if e["event"] == name]


async def test_an_agent_logs_in_and_takes_the_waiting_caller(line: Line, plan: IvrPlan) -> None:
    prompts, invoices = plan.prompts, plan.specialties["tax-invoice"].name["zh"]
    caller_call = asyncio.create_task(line.call(waiting_caller(["2", "2"])))
    await line.until_waiting("desk-tax-invoice")
    status, live = await line.api("/api/live")
    desk = next(d for d in live["desks"] if d["id"] == "tax-invoice")
    assert status == 200 and desk["waiting"] == 1 and live["desks"][0]["id"] == "tax-invoice"
    # Agent 1001 (PIN 1234); after the caller hangs up: outcome 1; then nobody waits.
    agent_record = await agent_call(line, agent(["1001#", "1234#", "1"]))
    caller = await caller_call
    assert caller.answered_by == agent_record.call_sid
    assert prompts.agent_greet_caller["zh"] in caller.said
    whisper = prompts.agent_whisper["zh"].partition("{ticket}")[0].format(desk=invoices)
    assert any(s.startswith(whisper) for s in agent_record.said)  # the ticket's digits follow
    assert prompts.agent_idle["zh"] in agent_record.said
    ticket = await line.ticket(caller.call_sid)
    assert ticket["answered_by"] == "1001" and ticket["answered_at"]
    assert ticket["status"] == "answered" and ticket["outcome"] == "answered-on-call"
    assert any(h["note"] == "outcome answered-on-call by agent 1001" for h in ticket["history"])
    status, live = await line.api("/api/live")
    me = next(a for a in live["agents"] if a["id"] == "1001")
    assert me["state"] == "offline"  # hung up at the idle prompt
    assert sum(live["calls_per_hour"]) == 1
    today = next(d for d in live["desks"] if d["id"] == "tax-invoice")["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (1, 1, 0)
    assert today["service_level"] == 1.0  # the test clock stands still: answered at once


async def test_the_agent_is_connected_to_the_caller_the_service_chose(db_url: str) -> None:
    """A returning caller (V) joins the tax-invoice desk after a first-time caller (F): the
    service gives V to the agent first, and the agent must be connected to V, not to F at
    the front of Twilio's queue. Two server processes: the callers' webhooks reach one,
    the agent's the other."""
    async with (
        running_line(db_url, caller_id=HOTLINE_NUMBER, dispatch_every_s=3600) as a,
        running_line(db_url, sharing=a, dispatch_every_s=3600) as b,
    ):
        # V's enterprise left a message at the desk earlier: a callback is owed.
        message = ScriptedCaller(
            keys=["2", "2", "1"],
            recordings=[Recording(duration=12.0)],
            queue=QueuePlan(waits=5, then=QueueChoice.HANGUP),
        )
        first = await a.call(message, from_number="+8613900000021")
        v_number = (await a.ticket(first.call_sid))["number"]
        # F calls for the first time and waits at the same desk.
        f_call = asyncio.create_task(
            a.call(waiting_caller(["2", "2"]), from_number="+8613900000020")
        )
        await a.until_waiting("desk-tax-invoice", 1)
        a.clock.now += timedelta(seconds=30)  # F has waited longest
        # The callback is placed; V answers, presses 1 and joins the desk behind F.
        assert await a.app[DISPATCHER].tick() == 1
        assert a.twilio_api is not None
        placed = a.twilio_api.created[-1]
        v_call = asyncio.create_task(
            a.carrier.place_call(
                ScriptedCaller(keys=["1"], queue=QueuePlan(then=QueueChoice.HANGUP, patience=20)),
                call_sid=placed["Sid"],
                from_number=placed["From"],
                to_number=placed["To"],
                voice_path=placed["Url"],
                status_path=placed["StatusCallback"],
                answered_by="human",
            )
        )
        await a.until_waiting("desk-tax-invoice", 2)

        # Agent 1001 logs in through the other process: V first (a returning caller), then F.
        agent_record = await agent_call(b, agent(["1001#", "1234#", "1", "2"]), via=b.base_url)
        f, v = await f_call, await v_call
        whispers = [s for s in agent_record.said if s.startswith(WHISPER_START)]
        ticket = " ".join(v_number[-6:])
        assert whispers[0] == PLAN.prompts.agent_whisper["zh"].format(desk=INVOICES, ticket=ticket)
        assert agent_record.bridged_with == [v.call_sid, f.call_sid]
        assert v.answered_by == f.answered_by == agent_record.call_sid
        greeting = PLAN.prompts.agent_greet_caller["zh"]
        assert greeting in v.said and greeting in f.said
        _, v_ticket = await b.api(f"/api/tickets/{v_number}")
        f_ticket = await b.ticket(f.call_sid)
        assert (v_ticket["answered_by"], v_ticket["outcome"]) == ("1001", "answered-on-call")
        assert (f_ticket["answered_by"], f_ticket["outcome"]) == ("1001", "forwarded")
        assert v_ticket["status"] == "answered" and f_ticket["status"] == "answered"
        # The desk's day, as the supervisors see it: two offered, two answered.
        _, live = await a.api("/api/live")
        today = next(d for d in live["desks"] if d["id"] == "tax-invoice")["today"]
        assert (today["answered"], today["abandoned"]) == (2, 0)


class HearsTheWhisper(ScriptedCaller):
    """An agent who, as the whisper is said, lets something happen meanwhile."""

    def __init__(self, keys: list[str | None], meanwhile: asyncio.Event) -> None:
        super().__init__(keys=keys)
        self.meanwhile = meanwhile

    async def hear(self, item: Heard) -> None:
        await super().hear(item)
        if item.text.startswith(WHISPER_START):
            self.meanwhile.set()
            await asyncio.sleep(0.3)


async def test_a_caller_who_hangs_up_during_the_whisper_costs_the_agent_nothing(
    line: Line,
) -> None:
    hangs_up = asyncio.Event()
    caller = ScriptedCaller(
        keys=["2", "2"], queue=QueuePlan(then=QueueChoice.HANGUP), queue_gate=hangs_up
    )
    caller_call = asyncio.create_task(line.call(caller))
    await line.until_waiting("desk-tax-invoice", 1)
    record = await agent_call(line, HearsTheWhisper(["1001#", "1234#"], hangs_up))
    gone = await caller_call
    # The whisper, then no connection: the agent is looked for a caller again, and waits.
    # The caller's own webhooks said it had gone: nobody asked the carrier to take it.
    assert record.bridged_with == [] and gone.answered_by is None
    assert PLAN.prompts.agent_idle["zh"] in record.said
    assert line.twilio_api is not None and line.twilio_api.dequeues == []
    ticket = await line.ticket(gone.call_sid)
    assert ticket["status"] == "abandoned" and ticket["answered_by"] is None
    _, live = await line.api("/api/live")
    assert next(d for d in live["desks"] if d["id"] == "tax-invoice")["waiting"] == 0


async def test_a_caller_taken_for_an_agent_who_never_came_goes_back_to_the_desk(
    line: Line,
) -> None:
    # Holds at the desk; holds in the agent's queue (for nobody); holds at the desk again.
    plans = [QueuePlan(then=QueueChoice.HANGUP, patience=20), QueuePlan(waits=50)]
    caller = ScriptedCaller(keys=["2", "2"], queue=[*plans, plans[0]])
    caller_call = asyncio.create_task(line.call(caller))
    await line.until_waiting("desk-tax-invoice", 1)
    # A round of hold music heard: the first plan is on.
    await eventually(lambda: caller.queue_updates, "a round of hold music")
    [record] = line.carrier.calls
    # An agent's process took the caller for agent 1001, whose <Dial> then never came.
    taking = AgentCallState(lang="zh", agent="1001", caller=record.call_sid, desk="tax-invoice")
    url = absolute(PUBLIC_URL, AgentTarget(AgentHook.TAKEN, taking))
    line.carrier.dequeue(line.carrier.queue_sid("desk-tax-invoice"), record.call_sid, url)
    # The hold in the agent's queue runs out: back at the desk, where 1001 takes the call.
    await line.until_waiting("desk-tax-invoice", 1)
    agent_record = await agent_call(line, agent(["1001#", "1234#", "1"]))
    await caller_call
    assert agent_record.bridged_with == [record.call_sid]
    assert [(r.queue, r.result) for r in record.queue_results] == [
        ("desk-tax-invoice", "redirected"),
        ("agent-1001", "leave"),
        ("desk-tax-invoice", "redirected"),
        ("agent-1001", "bridged"),
    ]
    ticket = await line.ticket(record.call_sid)
    notes = [h["note"] for h in ticket["history"]]
    assert "not connected to agent 1001: back to the tax-invoice desk" in notes
    assert (ticket["status"], ticket["answered_by"], ticket["outcome"]) == (
        "answered",
        "1001",
        "answered-on-call",
    )


async def test_longest_waiting_first_across_two_desks(line: Line) -> None:
    first = asyncio.create_task(line.call(waiting_caller(["2", "3"])))  # tax filing
    await line.until_waiting("desk-tax-filing")
    line.clock.now += timedelta(seconds=30)
    second = asyncio.create_task(line.call(waiting_caller(["2", "2"])))  # tax invoice
    await line.until_waiting("desk-tax-invoice")
    agent_record = await agent_call(line, agent(["1001#", "1234#", "2", "3"]))
    a, b = await first, await second
    assert agent_record.bridged_with == [a.call_sid, b.call_sid]
    assert (await line.ticket(a.call_sid))["outcome"] == "forwarded"
    assert (await line.ticket(b.call_sid))["outcome"] == "needs-callback"


async def test_backup_desk_only_when_the_primary_desks_are_empty(line: Line) -> None:
    backup = asyncio.create_task(line.call(waiting_caller(["2", "4"])))  # tax refund: backup
    await line.until_waiting("desk-tax-refund")
    line.clock.now += timedelta(seconds=30)
    primary = asyncio.create_task(line.call(waiting_caller(["2", "2"])))  # joined later
    await line.until_waiting("desk-tax-invoice")
    agent_record = await agent_call(line, agent(["1001#", "1234#", "1", "1"]))
    r, i = await backup, await primary
    assert agent_record.bridged_with == [i.call_sid, r.call_sid]


async def test_wrong_pin_three_times_ends_the_call(line: Line, plan: IvrPlan) -> None:
    record = await agent_call(line, agent(["1001#", "0000#", "1001#", "1111#", "9999#", "1234#"]))
    assert record.said[-1] == plan.prompts.agent_locked["zh"]
    failures = events(line, "agent_login_failed")
    assert [f["attempt"] for f in failures] == [1, 2, 3]
    _, live = await line.api("/api/live")
    assert next(a for a in live["agents"] if a["id"] == "1001")["state"] == "offline"


INTRUDER = "+8613900000666"
LOGGED_IN = PLAN.prompts.agent_ready["zh"]


def guesses(*pins: str) -> ScriptedCaller:
    """Agent 1001's id with each of these PINs, one attempt after the other."""
    return agent([key for pin in pins for key in ("1001#", f"{pin}#")])


async def test_guessing_pins_across_calls_is_locked_out(line: Line) -> None:
    """Three tries per call were no limit: a number calling again and again could find a
    PIN. Five wrong PINs within 15 minutes lock the agent id and the number."""
    first = await agent_call(line, guesses("0000", "1111", "2222"), INTRUDER)
    # Two more wrong PINs lock; the right one then sounds exactly like a wrong one.
    second = await agent_call(line, guesses("3333", "4444", "1234"), INTRUDER)
    assert second.said == first.said and LOGGED_IN not in second.said
    assert second.said[-2:] == [PLAN.prompts.agent_pin["zh"], PLAN.prompts.agent_locked["zh"]]
    for _ in range(10):  # guessing on: the right PIN never gets in
        again = await agent_call(line, guesses("1234", "1234", "1234"), INTRUDER)
        assert again.said == first.said
    locked = events(line, "agent_pin_locked")
    assert [e["reason"] for e in locked] == ["failures"] + ["refused"] * 31
    assert locked[0]["caller"] == "+86139****0666" and locked[0]["agent"] == "1001"
    assert INTRUDER not in line.log.getvalue()
    # The agent id is locked for the agent's own phone too, until a supervisor lifts it.
    assert LOGGED_IN not in (await agent_call(line, agent(["1001#", "1234#"]))).said
    status, body = await line.api("/api/agents/1001/lockout", method="DELETE")
    assert (status, body["id"]) == (200, "1001") and body["failures_lifted"] == 37
    status, body = await line.api("/api/agents/9999/lockout", method="DELETE")
    assert (status, body["error"]) == (404, "agent-not-found")
    assert LOGGED_IN in (await agent_call(line, agent(["1001#", "1234#"]))).said
    # The intruder's number is still locked; after 15 minutes without an attempt it is not.
    assert LOGGED_IN not in (await agent_call(line, guesses("1234"), INTRUDER)).said
    line.clock.now += timedelta(minutes=15)
    assert LOGGED_IN in (await agent_call(line, guesses("1234"), INTRUDER)).said


async def test_a_burst_of_calls_gets_no_more_pins_checked(line: Line) -> None:
    """46 calls at once from one number, three guesses each: every attempt is noted before
    its PIN is checked, so no more than the five the lockout allows are ever checked."""
    calls = [
        agent_call(line, guesses(f"{i:02d}00", f"{i:02d}11", f"{i:02d}22"), INTRUDER)
        for i in range(46)
    ]
    records = await asyncio.gather(*calls)
    assert all(
        LOGGED_IN not in r.said and r.said[-1] == PLAN.prompts.agent_locked["zh"] for r in records
    )
    assert len(events(line, "agent_login_failed")) <= 5
    assert LOGGED_IN not in (await agent_call(line, guesses("1234"), INTRUDER)).said


async def test_a_pin_lockout_holds_across_server_processes(db_url: str) -> None:
    async with running_line(db_url) as a, running_line(db_url) as b:
        await agent_call(a, guesses("0000", "1111", "2222"), INTRUDER)
        await agent_call(a, guesses("3333", "4444"), INTRUDER)  # five: locked
        # The other process refuses the right PIN, for the agent id and for the number.
        assert LOGGED_IN not in (await agent_call(b, agent(["1001#", "1234#"]))).said
        assert LOGGED_IN not in (await agent_call(b, guesses("0000", "1002"), INTRUDER)).said
        # (The processes of one test share a log: the last line started took it.)
        assert [e["reason"] for e in events(b, "agent_pin_locked")] == ["failures"] + [
            "refused"
        ] * 3
        status, _ = await b.api("/api/agents/1001/lockout", method="DELETE")
        assert status == 200
        assert LOGGED_IN in (await agent_call(a, agent(["1001#", "1234#"]))).said


async def test_agent_hangs_up_in_wrap_up(line: Line) -> None:
    caller_call = asyncio.create_task(line.call(waiting_caller(["0"])))
    await line.until_waiting("desk-general")
    # Agent 1002 serves the general desk; no outcome key: the agent hangs up in wrap-up.
    record = await agent_call(line, agent(["1002#", "1234#"]))
    caller = await caller_call
    assert caller.answered_by == record.call_sid
    ticket = await line.ticket(caller.call_sid)
    assert ticket["answered_by"] == "1002" and ticket["outcome"] is None
    _, live = await line.api("/api/live")
    assert next(a for a in live["agents"] if a["id"] == "1002")["state"] == "offline"


async def test_two_agents_ready_for_one_caller(line: Line) -> None:
    caller_call = asyncio.create_task(line.call(waiting_caller(["2", "2"])))
    await line.until_waiting("desk-tax-invoice")
    # 1001 (primary) and 1002 (backup for tax-invoice) log in at once; one caller.
    one, two = await asyncio.gather(
        agent_call(line, agent(["1001#", "1234#", "1"])),
        agent_call(line, agent(["1002#", "1234#", "1"])),
    )
    caller = await caller_call
    connected = [r for r in (one, two) if r.bridged_with]
    assert len(connected) == 1 and caller.answered_by == connected[0].call_sid


async def test_only_one_of_two_server_processes_claims_a_caller(db_url: str) -> None:
    # Two engines stand for two server processes on the same database.
    engines = [make_engine(db_url), make_engine(db_url)]
    await upgrade(engines[0])
    at = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    tickets = TicketStore(engines[0], ZoneInfo("Asia/Shanghai"), "zh")
    for i in range(3):
        call = CallRef(f"CA{i:032d}", "+8613800000000", "x")
        await tickets.apply(
            call,
            [
                TicketChange(
                    note="q",
                    status=TicketStatus.IN_QUEUE,
                    queue="desk-tax-invoice",
                    queue_desk="tax-invoice",
                )
            ],
            at + timedelta(seconds=i),
        )
    desks = {"tax-invoice": DeskLevel.PRIMARY}
    agents = [Agent(f"10{i:02d}", "a", "+86", "x", desks) for i in range(6)]
    stores = [AgentStore(e) for e in engines]
    # Only callers the carrier reported in its queue (their hold webhook's queue id) are
    # offered: the fourth never reached it.
    late = CallRef("CA" + "9" * 32, "+8613800000000", "x")
    queued = TicketChange(
        note="q", status=TicketStatus.IN_QUEUE, queue="desk-tax-invoice", queue_desk="tax-invoice"
    )
    await tickets.apply(late, [queued], at)
    for i in range(3):
        assert await stores[1].note_queue(f"CA{i:032d}", "QU" + "1" * 32)
    assert not await stores[1].note_queue("CA" + "8" * 32, "QU" + "1" * 32)  # not waiting
    claims = await asyncio.gather(
        *(stores[i % 2].claim_next(a, at + timedelta(minutes=1)) for i, a in enumerate(agents))
    )
    taken = [c.call_sid for c in claims if c is not None]
    assert sorted(taken) == [f"CA{i:032d}" for i in range(3)]  # each caller exactly once
    # The agent's process finds the claimed caller's queue; not once the caller is gone.
    index, first = next((i, c) for i, c in enumerate(claims) if c is not None)
    assert await stores[0].claimed_queue(agents[index].id, first.call_sid) == "QU" + "1" * 32
    assert await stores[0].claimed_queue("1099", first.call_sid) is None  # not its claim
    await stores[1].gone(first.call_sid, at + timedelta(minutes=2))
    assert await stores[0].claimed_queue(agents[index].id, first.call_sid) is None
    # Gone is offered to no one, even when its agent is ready again...
    await stores[0].release(agents[index].id)
    free = agents[-1]
    assert await stores[0].claim_next(free, at + timedelta(minutes=2)) is None
    # ...and the stay is closed by the caller's own hang-up: counted as abandoned.
    hung_up = TicketChange(
        note="hung up", status=TicketStatus.ABANDONED, queue_result=QueueExit.HANGUP
    )
    await tickets.apply(CallRef(first.call_sid, "x", "x"), [hung_up], at + timedelta(minutes=3))
    stays = await stores[0].stays_since(at - timedelta(hours=1))
    assert [s.result for s in stays if s.left_at is not None] == ["hangup"]
    assert desk_metrics(stays, 20)["tax-invoice"].abandoned == 1
    await tickets.aclose()
    for engine in engines:
        await engine.dispose()


async def test_overflow_by_time_to_a_backup_agent(
    db_url: str, tmp_path: Path, plan: IvrPlan
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    specs = config / "specialties.yaml"
    desk = '  tax-invoice:\n    name: {zh: 发票, en: "Invoices (fapiao)"}\n'
    queue = "    department: tax-bureau\n    queue: {size: 20, overflow: general"
    text = specs.read_text(encoding="utf-8")
    assert desk + queue in text
    specs.write_text(text.replace(desk + queue, desk + queue + ", max_wait_s: 10"), "utf-8")
    async with running_line(db_url, config_dir=config) as line:
        # Three hold rounds (20 s each on the carrier's clock) with nobody of the desk
        # ready: past its 10 s maximum, the caller is overdue.
        patient = ScriptedCaller(  # presses nothing at the offers of a message
            keys=["2", "2", None, None, None, None],
            queue=QueuePlan(waits=3, then=QueueChoice.HANGUP, patience=20),
        )
        invoice = asyncio.create_task(line.call(patient))
        await line.until_waiting("desk-tax-invoice")
        first = line.carrier.calls[0].call_sid

        async def overdue() -> bool:
            return "no agent ready" in json.dumps((await line.ticket(first))["history"])

        await eventually(overdue, "the caller's wait past the desk's maximum noted")
        line.clock.now += timedelta(seconds=30)  # the general caller joins later
        general = asyncio.create_task(line.call(waiting_caller(["0"])))
        await line.until_waiting("desk-general")
        # 1002: general is primary, tax-invoice only backup; the overdue caller comes first.
        record = await agent_call(line, agent(["1002#", "1234#", "1", "1"]))
        i, g = await invoice, await general
        assert record.bridged_with == [i.call_sid, g.call_sid]
        assert plan.prompts.queue_offer_voicemail["zh"].format(key="1") in i.said


async def test_ops_api_sets_agent_state_and_outcome(line: Line) -> None:
    status, body = await line.api("/api/agents/1001/state", method="PUT", json={"state": "away"})
    assert (status, body["state"]) == (200, "away")
    _, agents = await line.api("/api/agents")
    assert next(a for a in agents["agents"] if a["id"] == "1001")["state"] == "away"
    status, body = await line.api("/api/agents/1001/state", method="PUT", json={"state": "on-call"})
    assert (status, body["error"]) == (400, "invalid-parameter")
    status, body = await line.api("/api/agents/9999/state", method="PUT", json={"state": "away"})
    assert (status, body["error"]) == (404, "agent-not-found")
    record = await line.call(ScriptedCaller(keys=["0"]))
    number = (await line.ticket(record.call_sid))["number"]
    status, body = await line.api(
        f"/api/tickets/{number}/outcome", method="POST", json={"outcome": "forwarded"}
    )
    assert status == 200 and (await line.ticket(record.call_sid))["outcome"] == "forwarded"
    status, body = await line.api(f"/api/tickets/{number}/outcome", method="POST", json=[1])
    assert (status, body["error"]) == (400, "invalid-json")


async def test_two_agents_and_three_callers(line: Line) -> None:
    """The issue's acceptance: every caller reaches an agent of the right desk in order."""
    c1 = asyncio.create_task(line.call(waiting_caller(["2", "3"])))  # tax filing, first
    await line.until_waiting("desk-tax-filing")
    line.clock.now += timedelta(seconds=30)
    c2 = asyncio.create_task(line.call(waiting_caller(["0"])))  # general
    await line.until_waiting("desk-general")
    line.clock.now += timedelta(seconds=30)
    c3 = asyncio.create_task(line.call(waiting_caller(["2", "2"])))  # tax invoice, last
    await line.until_waiting("desk-tax-invoice")
    # 1001 serves tax-invoice and tax-filing; 1002 the general desk (tax-invoice as backup).
    a1, a2 = await asyncio.gather(
        agent_call(line, agent(["1001#", "1234#", "1", "2"])),
        agent_call(line, agent(["1002#", "1234#", "3", "2"])),
    )
    r1, r2, r3 = await c1, await c2, await c3
    # Each agent's first caller is the longest waiting at its primary desks; the last caller
    # goes to whichever agent serving tax-invoice is free first (1002 only as backup, once
    # its own desk is empty).
    assert a1.bridged_with[0] == r1.call_sid and a2.bridged_with[0] == r2.call_sid
    assert sorted(a1.bridged_with[1:] + a2.bridged_with[1:]) == [r3.call_sid]
    third = "1001" if r3.call_sid in a1.bridged_with else "1002"
    tickets = [await line.ticket(r.call_sid) for r in (r1, r2, r3)]
    assert [(t["specialty"], t["answered_by"], t["outcome"]) for t in tickets] == [
        ("tax-filing", "1001", "answered-on-call"),
        ("general", "1002", "needs-callback"),
        ("tax-invoice", third, "forwarded"),
    ]
    _, live = await line.api("/api/live")
    today = {d["id"]: d["today"] for d in live["desks"] if d["today"]}
    assert {desk: figures["answered"] for desk, figures in today.items()} == {
        "tax-filing": 1,
        "general": 1,
        "tax-invoice": 1,
    }


async def test_agents_added_through_the_ops_api_log_in_and_take_callers(line: Line) -> None:
    agent_spec = {
        "name": "赵敏",
        "answers_on": "client:zhaomin",
        "pin": "2468",
        "desks": {"tax-refund": "primary"},
    }
    status, body = await line.api("/api/agents/2001", method="PUT", json=agent_spec)
    assert status == 200 and body["desks"] == {"tax-refund": "primary"}
    status, body = await line.api("/api/agents/1001", method="PUT", json=agent_spec)
    assert (status, body["error"]) == (409, "agent-in-config")
    status, body = await line.api(
        "/api/agents/2002", method="PUT", json={**agent_spec, "desks": {"no-such-desk": "primary"}}
    )
    assert (status, body["error"]) == (400, "invalid-parameter")
    status, body = await line.api("/api/agents/2003", method="PUT", json={**agent_spec, "pin": "1"})
    assert (status, body["error"]) == (400, "invalid-parameter")
    _, listed = await line.api("/api/agents")
    added = next(a for a in listed["agents"] if a["id"] == "2001")
    assert added["defined_in"] == "api" and "pin" not in added and "pin_hash" not in added
    caller_call = asyncio.create_task(line.call(waiting_caller(["2", "4"])))  # tax refund
    await line.until_waiting("desk-tax-refund")
    record = await agent_call(line, agent(["2001#", "2468#", "1"]))
    caller = await caller_call
    assert caller.answered_by == record.call_sid
    assert (await line.ticket(caller.call_sid))["answered_by"] == "2001"
    status, _ = await line.api("/api/agents/2001", method="DELETE")
    assert status == 200
    status, body = await line.api("/api/agents/2001", method="DELETE")
    assert (status, body["error"]) == (404, "agent-not-found")


async def test_an_agent_whose_login_fails_on_the_database_is_not_queued_as_a_caller(
    line: Line, db_url: str, plan: IvrPlan
) -> None:
    prompts = plan.prompts
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE agent_events"))
        await conn.execute(text("DROP TABLE agent_states"))
    await engine.dispose()
    record = await agent_call(line, agent(["1001#", "1234#"]))
    assert record.application_error is None
    assert record.queue_results == [] and record.bridged_with == []
    assert record.said[-1] == prompts.agent_system_error["zh"]
    assert prompts.system_error["zh"] not in record.said
    assert events(line, "webhook_failed")[0]["path"] == "/twilio/agent-pin"
