"""Whole calls through the real webhooks, driven by the virtual carrier as Twilio would.

Every scenario checks what the caller hears and the ticket the call leaves behind; each runs
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hotline.carrier.callers import QueueChoice, QueuePlan, Recording, ScriptedCaller
from hotline.carrier.carrier import CallRecord
from hotline.config import LoadedConfig
from ivr.model import IvrPlan, ToMenu, ToSpecialty
from tests.support.line import NIGHT, SHANGHAI, Line, enqueued, heard, running_line
from tests.support.paths import CONFIG_DIR
from tests.support.waiting import eventually


@pytest.fixture
async def line(db_url: str) -> AsyncIterator[Line]:
    async with running_line(db_url) as running:
        yield running


async def test_chinese_caller_reaches_tax_invoice_desk_and_is_answered(
    line: Line, plan: IvrPlan
) -> None:
    caller = ScriptedCaller(keys=["2", "2"], queue=QueuePlan(waits=1, then=QueueChoice.BRIDGED))
    record = await line.call(caller)
    assert record.application_error is None
    invoices = plan.specialties["tax-invoice"].name["zh"]
    assert plan.prompts.greeting["zh"] in heard(record)
    assert plan.prompts.connecting["zh"].format(desk=invoices) in heard(record)
    assert plan.prompts.queue_next["zh"] in heard(record)
    assert enqueued(record) == [("desk-tax-invoice", "bridged")]
    assert record.heard[0].language == "zh-CN"
    ticket = await line.ticket(record.call_sid)
    assert ticket["number"].startswith("E20261130-")
    assert ticket["status"] == "answered"
    assert ticket["caller"] == "+8613812348000"
    assert ticket["menu_path"] == ["main.2", "tax.2"]
    assert (ticket["specialty"], ticket["department"], ticket["queue"]) == (
        "tax-invoice",
        "tax-bureau",
        "desk-tax-invoice",
    )
    assert ticket["queue_result"] == "bridged" and ticket["channel"] == "call"
    assert ticket["feedback_tier"] == "3-day" and ticket["due_at"]
    assert ticket["call_duration_s"] == int(record.duration)
    assert [h["to_status"] for h in ticket["history"] if h["to_status"]] == [
        "new",
        "routed",
        "in-queue",
        "answered",
    ]


async def test_english_caller_hangs_up_in_queue(line: Line, plan: IvrPlan) -> None:
    caller = ScriptedCaller(keys=["9", "2", "4"], queue=QueuePlan(waits=0, then=QueueChoice.HANGUP))
    record = await line.call(caller)
    assert plan.menus["main"].prompt["en"] in heard(record)
    connecting = plan.prompts.connecting["en"].format(
        desk=plan.specialties["tax-refund"].name["en"]
    )
    assert connecting in heard(record)
    english = [h for h in record.heard if h.text.startswith(connecting)]
    assert english[0].language == "en-US"
    assert enqueued(record) == [("desk-tax-refund", "hangup")]
    ticket = await line.ticket(record.call_sid)
    assert ticket["language"] == "en" and ticket["status"] == "abandoned"
    assert ticket["queue_result"] == "hangup"


async def test_no_input_until_the_general_desk(line: Line, plan: IvrPlan) -> None:
    caller = ScriptedCaller(keys=[None, None, None])
    record = await line.call(caller)
    said = heard(record)
    assert said.count(plan.prompts.no_input["zh"]) == 3
    assert plan.prompts.too_many_tries["zh"] in said
    assert enqueued(record) == [("desk-general", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert ticket["specialty"] == "general" and ticket["menu_path"] == []


async def test_invalid_keys_then_star_pound_and_zero(line: Line, plan: IvrPlan) -> None:
    # 4 → building menu; 9 is not an option; * repeats; # back to main; 2 → tax; 0 → general.
    caller = ScriptedCaller(keys=["4", "9", "*", "#", "2", "0"])
    record = await line.call(caller)
    said = heard(record)
    # The building menu's prompt: entered, after the wrong key, repeated.
    assert said.count(plan.menus["building"].prompt["zh"]) == 3
    assert plan.prompts.invalid["zh"] in said
    assert enqueued(record) == [("desk-general", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert ticket["menu_path"] == ["main.4", "main.2", "tax.0"]


async def test_closed_hours_voicemail_is_kept_for_a_callback(line: Line, plan: IvrPlan) -> None:
    line.clock.now = NIGHT
    caller = ScriptedCaller(recordings=[Recording(duration=14.0)])
    record = await line.call(caller)
    said = heard(record)
    closed = plan.prompts.closed
    assert closed["zh"].format(hours="06:00-24:00") in said
    assert closed["en"].format(hours="06:00-24:00") in said
    assert plan.prompts.voicemail_thanks["zh"] in said
    ticket = await line.ticket(record.call_sid)
    assert ticket["status"] == "voicemail" and ticket["channel"] == "voicemail"
    assert ticket["callback_requested"] is True
    assert [(r["kind"], r["duration_s"]) for r in ticket["recordings"]] == [("voicemail", 14)]


async def test_closed_hours_silence_still_books_the_callback(line: Line, plan: IvrPlan) -> None:
    line.clock.now = NIGHT
    record = await line.call(ScriptedCaller(recordings=[None]))
    assert plan.prompts.voicemail_empty["zh"] in heard(record)
    ticket = await line.ticket(record.call_sid)
    assert ticket["callback_requested"] is True and ticket["recordings"] == []


async def test_dated_override_closes_the_morning(line: Line, plan: IvrPlan) -> None:
    line.clock.now = datetime(2027, 1, 1, 7, 30, tzinfo=SHANGHAI)
    record = await line.call(ScriptedCaller(recordings=[None]))
    assert plan.prompts.closed["zh"].format(hours="08:00-20:00") in heard(record)
    line.clock.now = datetime(2027, 1, 1, 8, 30, tzinfo=SHANGHAI)
    record = await line.call(ScriptedCaller(keys=["0"]))
    assert enqueued(record) == [("desk-general", "bridged")]


async def test_press_one_in_queue_leaves_a_message(line: Line, plan: IvrPlan) -> None:
    # Hold through two loops; the third offers the message key.
    caller = ScriptedCaller(
        keys=["3", "1", "1"],
        recordings=[Recording(duration=20.0)],
        queue=QueuePlan(waits=5, then=QueueChoice.HANGUP),
    )
    record = await line.call(caller)
    assert plan.prompts.queue_offer_voicemail["zh"].format(key="1") in heard(record)
    assert enqueued(record) == [("desk-social-insurance", "leave")]
    assert plan.prompts.voicemail["zh"] in heard(record)
    ticket = await line.ticket(record.call_sid)
    assert ticket["status"] == "voicemail" and ticket["callback_requested"] is True
    assert ticket["specialty"] == "social-insurance"
    assert [r["kind"] for r in ticket["recordings"]] == ["voicemail"]


async def test_describe_without_a_speech_engine_falls_back_to_keys(
    line: Line, plan: IvrPlan
) -> None:
    # This line runs without recognition workers: the words cannot be understood, so the
    # caller is asked once more, then given the key menu; both recordings are kept.
    caller = ScriptedCaller(
        keys=["8", "2", "2"], recordings=[Recording(duration=9.0), Recording(duration=7.0)]
    )
    record = await line.call(caller)
    said = heard(record)
    assert plan.prompts.describe["zh"] in said
    assert plan.prompts.not_understood["zh"] in said
    assert plan.prompts.use_keys["zh"] in said
    assert enqueued(record) == [("desk-tax-invoice", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert [r["kind"] for r in ticket["recordings"]] == ["description", "description"]
    assert ticket["classification"]["problem"] == "no-speech-engine"
    assert ticket["classification"]["attempts"] == 2
    assert ticket["menu_path"] == ["main.8", "main.2", "tax.2"]


async def test_describe_with_silence_returns_to_the_menu(line: Line, plan: IvrPlan) -> None:
    caller = ScriptedCaller(keys=["8", "2", "3"], recordings=[None])
    record = await line.call(caller)
    assert plan.prompts.no_input["zh"] in heard(record)
    assert enqueued(record) == [("desk-tax-filing", "bridged")]


async def test_queue_full_at_the_carrier_overflows_to_the_general_desk(db_url: str) -> None:
    import asyncio

    async with running_line(db_url, queue_max_size={"desk-tax-filing": 1}) as line:
        gate = asyncio.Event()
        first = ScriptedCaller(keys=["2", "3"], queue_gate=gate)
        first_call = asyncio.create_task(line.call(first))
        await line.until_waiting("desk-tax-filing")
        second = await line.call(ScriptedCaller(keys=["2", "3"]))
        gate.set()
        await first_call
        assert enqueued(second) == [("desk-tax-filing", "queue-full"), ("desk-general", "bridged")]
        ticket = await line.ticket(second.call_sid)
        assert ticket["specialty"] == "tax-filing" and ticket["queue"] == "desk-general"
        assert any("desk-tax-filing full" in h["note"] for h in ticket["history"])


async def test_queue_size_from_config_overflows_before_enqueue(
    db_url: str, tmp_path: Path, plan: IvrPlan
) -> None:
    import asyncio

    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    specs = config / "specialties.yaml"
    text = specs.read_text(encoding="utf-8")
    marker = (
        '  tax-filing:\n    name: {zh: 纳税申报, en: "Tax filing"}\n    department: tax-bureau\n'
    )
    assert marker in text
    specs.write_text(
        text.replace(
            marker + "    queue: {size: 20, overflow: general}",
            marker + "    queue: {size: 1, overflow: voicemail}",
        ),
        encoding="utf-8",
    )
    async with running_line(db_url, config_dir=config) as line:
        gate = asyncio.Event()
        first_call = asyncio.create_task(
            line.call(ScriptedCaller(keys=["2", "3"], queue_gate=gate))
        )
        await line.until_waiting("desk-tax-filing")
        second = await line.call(
            ScriptedCaller(keys=["2", "3"], recordings=[Recording(duration=6.0)])
        )
        gate.set()
        await first_call
        assert enqueued(second) == []
        assert plan.prompts.queue_busy["zh"] in heard(second)
        ticket = await line.ticket(second.call_sid)
        assert ticket["status"] == "voicemail" and ticket["callback_requested"] is True


async def test_emergency_switch_in_yaml_closes_the_line_without_restart(
    db_url: str, tmp_path: Path, plan: IvrPlan
) -> None:
    closed = plan.prompts.closed["zh"].format(hours="06:00-24:00")
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    async with running_line(db_url, config_dir=config) as line:
        record = await line.call(ScriptedCaller(keys=["0"]))
        assert enqueued(record) == [("desk-general", "bridged")]
        hours = config / "line.yaml"
        hours.write_text(
            hours.read_text(encoding="utf-8").replace(
                "emergency_closed: false", "emergency_closed: true"
            ),
            encoding="utf-8",
        )

        async def heard_closed() -> CallRecord | None:
            record = await line.call(ScriptedCaller(recordings=[None]))
            return record if closed in heard(record) else None

        await eventually(heard_closed, "a caller told the line is closed", every_s=0.1)
        assert (await line.api("/healthz", token=None))[0] == 200
        # A broken edit is refused: the line keeps the last good config and says why.
        hours.write_text("timezone: [", encoding="utf-8")

        async def refused() -> dict[str, Any] | None:
            _, health = await line.api("/healthz", token=None)
            return health if health["config"]["errors"] else None

        health = await eventually(refused, "the broken edit refused", every_s=0.1)
        assert health["status"] == "degraded" and "line.yaml" in health["config"]["errors"][0]
        record = await line.call(ScriptedCaller(recordings=[None]))
        assert closed in heard(record)


async def test_every_desk_is_reachable_by_keys(tmp_path: Path, shipped: LoadedConfig) -> None:
    # SQLite only: 49 calls of the same shape; the backends are covered by the others.
    plan = shipped.plan
    async with running_line(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}") as line:
        for group_key, group_option in sorted(plan.menus["main"].options.items()):
            if not isinstance(group_option.target, ToMenu):
                continue
            for key, option in sorted(plan.menus[group_option.target.menu].options.items()):
                assert isinstance(option.target, ToSpecialty)
                desk = plan.specialties[option.target.specialty]
                record = await line.call(ScriptedCaller(keys=[group_key, key]))
                assert enqueued(record) == [(desk.queue, "bridged")], (group_key, key)
