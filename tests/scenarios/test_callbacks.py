"""Callbacks and surveys: stored jobs, placed through the twilio library against a stand-in
Calls API, answered through the real signed webhooks; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from casework.callbacks import (
    Attempt,
    CallbackPolicy,
    OwedCall,
    after_attempt,
    attempt_from,
    choose,
    may_dial,
    owes_callback,
)
from casework.tickets import Satisfaction, TicketStatus
from hotline.callbacks.dispatcher import Dispatcher
from hotline.carrier.callers import QueueChoice, QueuePlan, Recording, ScriptedCaller
from hotline.config.live import LiveConfig
from hotline.observability.logs import mask_number
from hotline.store.durable import TicketWrites
from hotline.store.engine import make_engine, upgrade
from hotline.store.jobs import JobKind, JobStore, owe_call
from hotline.store.tables import callback_jobs, queue_members, tickets
from hotline.store.tickets import TicketStore
from hotline.twilio.rest import TwilioRest
from hotline.web.keys import DISPATCHER, JOBS
from ivr.actions import Gather, Hangup, Hook, Play, Redirect, Say, Target
from ivr.model import IvrPlan
from ivr.outbound import Answered, Heard, Keyed, OwedCallFacts, Rated, outbound_step
from ivr.state import OutboundState
from tests.support.line import ADMIN_TOKEN, AUTH_TOKEN, NIGHT, SHANGHAI, Line, running_line
from tests.support.twilio_api import TwilioApi, twilio_api

ACCOUNT = "AC" + "0" * 32
HOTLINE_NUMBER = "+861012345000"
EVENING = datetime(2026, 11, 30, 23, 50, tzinfo=SHANGHAI)
MORNING = datetime(2026, 12, 1, 6, 0, tzinfo=SHANGHAI)
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


# -- the pure rules ------------------------------------------------------------------------


def test_callbacks_first_oldest_first_within_the_caps() -> None:
    policy = CallbackPolicy(max_in_flight=3, per_desk=1)
    pending = [
        OwedCall(1, "survey", "tax-invoice", T0),
        OwedCall(2, "callback", "tax-invoice", T0 + timedelta(minutes=2)),
        OwedCall(3, "callback", "tax-invoice", T0 + timedelta(minutes=1)),
        OwedCall(4, "callback", "social-insurance", T0 + timedelta(minutes=3)),
        OwedCall(5, "callback", "customs", T0 + timedelta(minutes=4)),
    ]
    assert [o.job_id for o in choose(pending, 0, {}, policy)] == [3, 4, 5]
    # One customs callback already live: that desk is full, the survey gets the room.
    assert [o.job_id for o in choose(pending, 1, {"customs": 1}, policy)] == [3, 4]
    assert [o.job_id for o in choose(pending, 0, {"tax-invoice": 1}, policy)] == [4, 5, 1]
    assert choose(pending, 3, {}, policy) == []


def test_what_an_attempt_settles() -> None:
    policy = CallbackPolicy(attempts=3, retry_after=timedelta(minutes=30))
    assert attempt_from("completed", False, "callback", rated=False) is Attempt.REACHED
    assert attempt_from("completed", True, "callback", rated=False) is Attempt.MACHINE
    assert attempt_from("completed", False, "survey", rated=False) is Attempt.UNRATED
    assert attempt_from("completed", False, "survey", rated=True) is Attempt.REACHED
    assert attempt_from("no-answer", False, "callback", rated=False) is Attempt.NO_ANSWER
    assert attempt_from("busy", False, "callback", rated=False) is Attempt.BUSY
    assert attempt_from("failed", False, "callback", rated=False) is Attempt.FAILED
    retry = after_attempt(Attempt.BUSY, 1, T0, policy)
    assert (retry.done, retry.retry_at) == (False, T0 + timedelta(minutes=30))
    last = after_attempt(Attempt.NO_ANSWER, 3, T0, policy)
    assert (last.done, last.gave_up) == (True, True)
    assert after_attempt(Attempt.REACHED, 3, T0, policy).gave_up is False


def test_who_is_owed_a_callback() -> None:
    assert owes_callback(TicketStatus.VOICEMAIL, True, False, answered=False)
    assert owes_callback(TicketStatus.ABANDONED, False, described=True, answered=False)
    assert not owes_callback(TicketStatus.ABANDONED, False, described=False, answered=False)
    assert not owes_callback(TicketStatus.ANSWERED, False, described=True, answered=True)


def test_no_call_starts_in_the_last_minutes_before_closing(shipped: Any) -> None:
    hours, policy = shipped.plan.hours, shipped.callbacks
    assert not may_dial(hours, EVENING, policy)
    assert not may_dial(hours, datetime(2026, 12, 1, 5, 59, tzinfo=SHANGHAI), policy)
    assert may_dial(hours, MORNING, policy)
    assert may_dial(hours, datetime(2026, 12, 1, 23, 44, tzinfo=SHANGHAI), policy)


def test_the_callback_call_offers_the_desk_and_the_message(shipped: Any) -> None:
    plan = shipped.plan
    owed = OwedCallFacts("callback", "E20261130-000007", "tax-invoice", "https://r.example/RE1")
    state = OutboundState(job=7, lang="en")
    _, actions = outbound_step(plan, owed, state, Answered(machine=False))
    assert isinstance(actions[0], Heard) and isinstance(actions[1], Gather)
    intro = actions[1].prompt[0]
    assert isinstance(intro, Say)
    invoices = plan.specialties["tax-invoice"].name["en"]
    said = plan.prompts.callback_intro["en"].format(ticket="E20261130-000007", desk=invoices)
    assert said in intro.text
    _, actions = outbound_step(plan, owed, state, Keyed("1"))
    redirect = actions[-1]
    assert isinstance(redirect, Redirect) and isinstance(redirect.target, Target)
    assert redirect.target.hook is Hook.ROUTE and redirect.target.state.desk == "tax-invoice"
    _, actions = outbound_step(plan, owed, state, Keyed("2"))
    assert isinstance(actions[0], Gather) and actions[0].prompt[0] == Play("https://r.example/RE1")
    assert outbound_step(plan, owed, state, Answered(machine=True))[1] == (Hangup(),)


def test_the_survey_takes_a_rating(shipped: Any) -> None:
    owed = OwedCallFacts("survey", "E20261130-000007", "tax-invoice", None)
    state = OutboundState(job=7, lang="zh")
    _, actions = outbound_step(shipped.plan, owed, state, Keyed("3"))
    assert actions[0] == Rated(Satisfaction.DISSATISFIED) and actions[-1] == Hangup()
    _, actions = outbound_step(shipped.plan, owed, state, Keyed("7"))
    assert isinstance(actions[0], Gather)  # asked once more


# -- through the running line ----------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[TwilioApi]:
    async with twilio_api(ACCOUNT, AUTH_TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
async def line(db_url: str, api: TwilioApi) -> AsyncIterator[Line]:
    async with running_line(
        db_url,
        now=EVENING,
        twilio_account_sid=ACCOUNT,
        caller_id=HOTLINE_NUMBER,
        twilio_api_base=api.base_url,
        dispatch_every_s=3600,  # the test ticks the dispatcher itself
    ) as running:
        api.carrier = running.carrier
        yield running


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def leave_message_for_tax_invoices(line: Line) -> str:
    """Tax invoices, then "press 1 to leave a message" in the queue; the ticket's number."""
    caller = ScriptedCaller(
        keys=["2", "2", "1"],
        recordings=[Recording(duration=12.0)],
        queue=QueuePlan(waits=5, then=QueueChoice.HANGUP),
    )
    record = await line.call(caller)
    ticket = await line.ticket(record.call_sid)
    assert ticket["status"] == "voicemail" and ticket["specialty"] == "tax-invoice"
    return str(ticket["number"])


async def answer(
    line: Line, api_call: dict[str, str], caller: ScriptedCaller, answered_by: str = "human"
) -> Any:
    return await line.carrier.place_call(
        caller,
        call_sid=api_call["Sid"],
        from_number=api_call["From"],
        to_number=api_call["To"],
        voice_path=path_of(api_call["Url"]),
        status_path=path_of(api_call["StatusCallback"]),
        answered_by=answered_by,
    )


async def test_message_left_at_2350_is_returned_at_0600_to_the_right_desk(
    line: Line, api: TwilioApi, plan: IvrPlan
) -> None:
    number = await leave_message_for_tax_invoices(line)
    jobs = await line.app[JOBS].jobs_of(number)
    assert [(j["kind"], j["state"], j["desk"]) for j in jobs] == [
        ("callback", "pending", "tax-invoice")
    ]
    dispatcher = line.app[DISPATCHER]
    assert await dispatcher.tick() == 0  # 23:50: too close to closing
    line.clock.now = MORNING - timedelta(minutes=1)
    assert await dispatcher.tick() == 0 and api.created == []
    line.clock.now = MORNING
    assert await dispatcher.tick() == 1
    [placed] = api.created
    assert placed["To"] == "+8613812348000" and placed["From"] == HOTLINE_NUMBER
    assert placed["MachineDetection"] == "Enable"
    assert placed["StatusCallbackEvent"] == "completed"
    assert placed["Url"].startswith("https://hotline.example.gov/twilio/outbound?job=")

    # The enterprise answers, hears the ticket and the desk, and presses 1.
    caller = ScriptedCaller(keys=["1"], queue=QueuePlan(waits=0, then=QueueChoice.HANGUP))
    record = await answer(line, placed, caller)
    said = " ".join(record.said)
    invoices = plan.specialties["tax-invoice"].name["zh"]
    assert plan.prompts.callback_intro["zh"].format(ticket=number, desk=invoices) in said
    assert [q.queue for q in record.queue_results] == ["desk-tax-invoice"]
    async with line.app[JOBS].engine.connect() as conn:
        member = (
            await conn.execute(
                select(queue_members).where(queue_members.c.call_sid == placed["Sid"])
            )
        ).one()
        opened = await conn.scalar(select(func.count()).select_from(tickets))
    # A returning call: ahead of first-time callers in the tax-invoice queue, same ticket.
    assert (member.desk, member.queue, member.callback) == (
        "tax-invoice",
        "desk-tax-invoice",
        True,
    )
    assert opened == 1
    jobs = await line.app[JOBS].jobs_of(number)
    assert [(j["state"], j["attempts"], j["last_result"]) for j in jobs] == [("done", 1, "reached")]
    _, ticket = await line.api(f"/api/tickets/{number}")
    assert any(h["note"] == "callback attempt 1: reached" for h in ticket["history"])


async def test_unanswered_callbacks_are_retried_then_marked_for_a_person(
    line: Line, api: TwilioApi
) -> None:
    number = await leave_message_for_tax_invoices(line)
    dispatcher = line.app[DISPATCHER]
    line.clock.now = MORNING
    for attempt, status in enumerate(["no-answer", "busy", "completed"], start=1):
        assert await dispatcher.tick() == 1, attempt
        placed = api.created[-1]
        params = {"CallSid": placed["Sid"], "CallStatus": status, "From": HOTLINE_NUMBER}
        if status == "completed":
            params["AnsweredBy"] = "machine_end_beep"
        for _ in range(2):  # Twilio may send a status callback twice: counted once
            response = await line.carrier.post(path_of(placed["StatusCallback"]), params)
            assert response.status == 200
        assert await dispatcher.tick() == 0  # spaced: not again at once
        line.clock.now += timedelta(minutes=31)
    jobs = await line.app[JOBS].jobs_of(number)
    assert [(j["state"], j["attempts"], j["last_result"]) for j in jobs] == [
        ("failed", 3, "machine")
    ]
    _, ticket = await line.api(f"/api/tickets/{number}")
    assert ticket["status"] == "callback-failed"
    notes = [h["note"] for h in ticket["history"] if h["actor"] == "system:dispatcher"]
    assert notes[0] == "callback attempt 1: no-answer" and len(notes) == 3
    assert "needs a person" in notes[-1]


async def test_a_number_the_api_refuses_counts_as_a_failed_attempt(
    line: Line, api: TwilioApi
) -> None:
    api.invalid_numbers.add("+8613812348000")
    number = await leave_message_for_tax_invoices(line)
    line.clock.now = MORNING
    assert await line.app[DISPATCHER].tick() == 0
    assert len(api.refused) == 1
    [job] = await line.app[JOBS].jobs_of(number)
    assert (job["state"], job["attempts"], job["last_result"]) == ("pending", 1, "failed")
    [refused] = [
        event
        for event in map(json.loads, line.log.getvalue().splitlines())
        if event["event"] == "outbound_not_placed"
    ]
    assert "21211" in refused["error"] and refused["to"] == mask_number("+8613812348000")


async def test_survey_after_resolution_reopens_a_dissatisfied_ticket(
    line: Line, api: TwilioApi, plan: IvrPlan
) -> None:
    line.clock.now = MORNING + timedelta(hours=3)
    record = await line.call(ScriptedCaller(keys=["2", "2"]))
    number = (await line.ticket(record.call_sid))["number"]
    for action in ("accept", "resolve"):
        status, body = await line.api(
            f"/api/tickets/{number}/actions",
            ADMIN_TOKEN,
            method="POST",
            json={"action": action, "text": "作废重开了专票，已告知企业"},
        )
        assert status == 200, body
    jobs = await line.app[JOBS].jobs_of(number)
    assert [(j["kind"], j["state"]) for j in jobs] == [("survey", "pending")]
    assert await line.app[DISPATCHER].tick() == 1
    placed = api.created[-1]
    record = await answer(line, placed, ScriptedCaller(keys=["3"]))
    said = " ".join(record.said)
    prompts, invoices = plan.prompts, plan.specialties["tax-invoice"].name["zh"]
    assert prompts.survey_intro["zh"].format(ticket=number, desk=invoices) in said
    assert prompts.survey_reopened["zh"] in said
    _, ticket = await line.api(f"/api/tickets/{number}")
    assert ticket["satisfaction"] == "dissatisfied" and ticket["satisfaction_at"]
    assert ticket["status"] == "reopened"
    reopened = [h for h in ticket["history"] if h["to_status"] == "reopened"]
    assert [(h["actor"], h["from_status"]) for h in reopened] == [("system:survey", "resolved")]
    assert any(h["note"] == "survey: dissatisfied" for h in ticket["history"])
    [job] = await line.app[JOBS].jobs_of(number)
    assert (job["state"], job["last_result"]) == ("done", "reached")


# -- several dispatchers, one database ---------------------------------------------------------


class CountingDialer:
    """Stands in for the carrier inside one process: counts every call it is asked to place."""

    def __init__(self, placed: list[int]) -> None:
        self.placed = placed

    async def place(self, call: Any) -> str:
        job = int(call.url.split("job=")[1].split("&")[0])
        self.placed.append(job)
        await asyncio.sleep(0.01)
        return f"CA{job:032d}"

    async def close(self) -> None:
        pass


async def test_several_dispatchers_claim_each_job_exactly_once(
    db_url: str, shipped: Any, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    await upgrade(engine)
    now = MORNING
    async with engine.begin() as conn:
        for i in range(40):
            result = await conn.execute(
                tickets.insert().values(
                    number=f"E20261201-{i:06d}",
                    call_sid=f"CAseed{i:04d}",
                    caller=f"+86138000{i:05d}",
                    called="+861012345000",
                    language="zh",
                    menu_path=[],
                    specialty=f"desk-{i % 8}",
                    channel="voicemail",
                    appeal_type="unknown",
                    status="voicemail",
                    callback_requested=True,
                    wants_voicemail=True,
                    created_at=now - timedelta(hours=8),
                    updated_at=now - timedelta(hours=8),
                    version=1,
                )
            )
            assert result.inserted_primary_key is not None
            await conn.run_sync(
                owe_call,
                ticket_id=result.inserted_primary_key[0],
                kind=JobKind.CALLBACK,
                desk=f"desk-{i % 8}",
                not_before=now - timedelta(hours=8) + timedelta(seconds=i),
                dedupe=f"callback:{i}:call",
                at=now - timedelta(hours=8) + timedelta(seconds=i),
            )
    policy = CallbackPolicy(max_in_flight=6, per_desk=1)
    live = LiveConfig(shipped)
    object.__setattr__(live.current, "callbacks", policy)
    placed: list[int] = []
    engines = [make_engine(db_url) for _ in range(4)]
    ports = [
        TicketWrites.open(
            TicketStore(e, SHANGHAI, "zh"),
            tmp_path / f"spool-{n}.db",
            lambda: now,
            write_s=5,
            read_s=5,
            jobs=JobStore(e),
        )
        for n, e in enumerate(engines)
    ]
    dispatchers = [
        Dispatcher(
            ports[n],
            CountingDialer(placed),
            live,
            lambda: now,
            public_url="https://hotline.example.gov",
            caller_id=HOTLINE_NUMBER,
            owner=f"process-{n}",
        )
        for n, e in enumerate(engines)
    ]
    # All four at once: the caps hold across them (6 live, one per desk).
    counts = await asyncio.gather(*(d.tick() for d in dispatchers))
    assert sum(counts) == 6 and len(set(placed)) == 6
    async with engine.connect() as conn:
        live_desks = (
            await conn.execute(
                select(callback_jobs.c.desk).where(callback_jobs.c.state == "dialing")
            )
        ).scalars()
        desks = list(live_desks)
    assert len(desks) == len(set(desks)) == 6
    # Settle every live call, again and again, until all 40 are done: each placed once.
    store = JobStore(engine)
    for _ in range(20):
        async with engine.connect() as conn:
            sids = (
                await conn.execute(
                    select(callback_jobs.c.call_sid).where(callback_jobs.c.state == "dialing")
                )
            ).scalars()
            live_sids = [s for s in sids if s]
        for sid in live_sids:
            await store.settle(sid, "completed", False, now, policy)
        await asyncio.gather(*(d.tick() for d in dispatchers))
    assert sorted(placed) == sorted(set(placed)) and len(placed) == 40
    async with engine.connect() as conn:
        states = (await conn.execute(select(callback_jobs.c.state))).scalars()
        assert set(states) == {"done"}
    for port in ports:
        await port.close()
    for e in (*engines, engine):
        await e.dispose()


async def test_dialer_speaks_the_calls_api_through_the_twilio_library(api: TwilioApi) -> None:
    from hotline.twilio.rest import CallRequest, DialError

    dialer = TwilioRest(ACCOUNT, AUTH_TOKEN, api_base=api.base_url)
    try:
        sid = await dialer.place(
            CallRequest(
                "+8613812348000",
                HOTLINE_NUMBER,
                "https://h.example/twilio/outbound?job=1",
                "https://h.example/twilio/outbound-status?job=1",
                25,
            )
        )
        assert sid == api.created[0]["Sid"] and sid.startswith("CA")
        assert api.created[0]["Timeout"] == "25"
        wrong = TwilioRest(ACCOUNT, "not-the-token", api_base=api.base_url)
        with pytest.raises(DialError, match=r"Authenticate|401"):
            await wrong.place(
                CallRequest("+8613812348000", HOTLINE_NUMBER, "https://h/x", "https://h/y", 25)
            )
        await wrong.close()
    finally:
        await dialer.close()


async def test_the_rest_client_takes_a_named_caller_out_of_its_queue(line: Line) -> None:
    """The Queue Members resource, through the twilio library, against the stand-in in
    front of the carrier: the first request for a member succeeds, later ones say the
    caller is gone; a refused login or a URL Twilio will not take is no news about the
    caller."""
    from hotline.twilio.rest import TakeError

    assert line.twilio_api is None  # this module's line has its own stand-in
    async with twilio_api(ACCOUNT, AUTH_TOKEN, line.carrier) as api:
        holding = asyncio.create_task(
            line.call(
                ScriptedCaller(keys=["0"], queue=QueuePlan(then=QueueChoice.HANGUP, patience=10))
            )
        )
        await line.until_waiting("desk-general")
        [caller] = [c for c in line.carrier.calls if c.queue_results == []]
        queue_sid = line.carrier.queue_sid("desk-general")
        rest = TwilioRest(ACCOUNT, AUTH_TOKEN, api_base=api.base_url)
        wrong = TwilioRest(ACCOUNT, "not-the-token", api_base=api.base_url)
        try:
            with pytest.raises(TakeError) as refused:
                await wrong.take(queue_sid, caller.call_sid, "https://h.example/twilio/x")
            assert refused.value.gone is False
            with pytest.raises(TakeError) as bad_url:
                await rest.take(queue_sid, caller.call_sid, "ftp://hotline.example.gov/x")
            assert bad_url.value.gone is False
            await rest.take(queue_sid, caller.call_sid, "https://hotline.example.gov/twilio/x")
            with pytest.raises(TakeError) as again:
                await rest.take(queue_sid, caller.call_sid, "https://h.example/twilio/x")
            assert again.value.gone is True
        finally:
            await rest.close()
            await wrong.close()
        record = await holding
    assert [d["status"] for d in api.dequeues] == ["401", "400", "200", "400"]
    assert api.dequeues[2]["Url"] == "https://hotline.example.gov/twilio/x"
    assert [r.result for r in record.queue_results] == ["redirected"]


async def test_a_caller_who_described_the_matter_and_hung_up_is_called_back(
    line: Line, api: TwilioApi
) -> None:
    line.clock.now = MORNING + timedelta(hours=2)
    record = await line.call(ScriptedCaller(keys=["8"], recordings=[Recording(duration=9.0)]))
    ticket = await line.ticket(record.call_sid)
    assert ticket["status"] == "abandoned"
    assert [r["kind"] for r in ticket["recordings"]] == ["description"]
    [job] = await line.app[JOBS].jobs_of(ticket["number"])
    assert (job["kind"], job["state"]) == ("callback", "pending")
    # A caller who only pressed keys and hung up left nothing to return.
    record = await line.call(ScriptedCaller(keys=["2"]))
    ticket = await line.ticket(record.call_sid)
    assert ticket["status"] == "abandoned"
    assert await line.app[JOBS].jobs_of(ticket["number"]) == []


async def test_a_withheld_caller_leaves_a_message_and_is_owed_no_callback(
    line: Line, api: TwilioApi
) -> None:
    line.clock.now = NIGHT
    record = await line.call(
        ScriptedCaller(recordings=[Recording(duration=14.0)]), from_number="+266696687"
    )
    ticket = await line.ticket(record.call_sid)
    assert ticket["status"] == "voicemail" and ticket["callback_requested"] is True
    # Twilio's "ANONYMOUS" is no number: nobody could take the call back.
    assert await line.app[JOBS].jobs_of(ticket["number"]) == []
    assert ticket["caller"] == "withheld"
    notes = [h["note"] for h in ticket["history"]]
    assert "callback owed, but the caller's number cannot be called back" in notes
    line.clock.now = MORNING
    assert await line.app[DISPATCHER].tick() == 0 and api.created == []
    # Resolved, the ticket owes a survey: no one to ask either.
    for action in ("accept", "resolve"):
        status, body = await line.api(
            f"/api/tickets/{ticket['number']}/actions",
            ADMIN_TOKEN,
            method="POST",
            json={"action": action, "text": "已在政务网公开答复"},
        )
        assert status == 200, body
    assert await line.app[JOBS].jobs_of(ticket["number"]) == []
    _, ticket = await line.api(f"/api/tickets/{ticket['number']}")
    assert "survey owed, but the caller's number cannot be called back" in [
        h["note"] for h in ticket["history"]
    ]
    # The same message from a number is owed its call.
    line.clock.now = NIGHT
    record = await line.call(ScriptedCaller(recordings=[Recording(duration=14.0)]))
    ticket = await line.ticket(record.call_sid)
    [job] = await line.app[JOBS].jobs_of(ticket["number"])
    assert (job["kind"], job["state"]) == ("callback", "pending")


async def test_no_job_is_stored_for_a_caller_who_cannot_be_called_back(db_url: str) -> None:
    """Every job goes through `owe_call`, which reads the ticket's caller as the webhook
    reads From: tickets stored before withheld callers were recorded as such are refused."""
    engine = make_engine(db_url)
    await upgrade(engine)
    callers = ["withheld", "unknown", "+266696687", "+8656696687", "anonymous", "+8610123450000"]
    callers.append("+8613812348000")  # the one that can be called back
    stored = []
    async with engine.begin() as conn:
        for i, caller in enumerate(callers):
            result = await conn.execute(
                tickets.insert().values(
                    number=f"E20261201-{i:06d}",
                    call_sid=f"CAowed{i:04d}",
                    caller=caller,
                    called=HOTLINE_NUMBER,
                    language="zh",
                    menu_path=[],
                    channel="voicemail",
                    appeal_type="unknown",
                    status="voicemail",
                    callback_requested=True,
                    wants_voicemail=True,
                    created_at=MORNING,
                    updated_at=MORNING,
                    version=1,
                )
            )
            assert result.inserted_primary_key is not None
            stored.append(
                await conn.run_sync(
                    owe_call,
                    ticket_id=result.inserted_primary_key[0],
                    kind=JobKind.CALLBACK,
                    desk=None,
                    not_before=MORNING,
                    dedupe=f"callback:{i}:call",
                    at=MORNING,
                )
            )
        jobs = (await conn.execute(select(callback_jobs.c.dedupe))).scalars().all()
    await engine.dispose()
    assert stored == [False] * 6 + [True]
    assert list(jobs) == ["callback:6:call"]
