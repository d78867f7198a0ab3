"""Callers who describe their matter: the real Vosk model on real recordings, through the
real webhooks, with a stand-in for Twilio's recordings API on loopback."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import re
import shutil
import struct
import time
import wave
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio

from hotline.carrier.callers import ScriptedCaller
from hotline.config import load_config
from hotline.twilio.recordings import RecordingFetcher
from hotline.understanding.understander import ClassifierCache, Understander
from hotline.web.keys import VOICEMAILS
from ivr.events import Recording as TicketRecording
from ivr.model import IvrPlan
from routing.tiers import AppealType
from speech.pool import Engines, SpeechPool
from tests.support.line import AUTH_TOKEN, SHANGHAI, Line, enqueued, heard, running_line
from tests.support.paths import CONFIG_DIR
from tests.support.recordings import (
    ACCOUNT,
    AUDIO,
    MODELS,
    Recordings,
    require_model,
    serve_recordings,
    spoken,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


def wav(samples: list[int], rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return out.getvalue()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recordings() -> AsyncIterator[Recordings]:
    async with serve_recordings() as store:
        yield store


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def line(
    recordings: Recordings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Line]:
    require_model()
    db = tmp_path_factory.mktemp("speech") / "speech.db"
    async with running_line(
        f"sqlite+aiosqlite:///{db}",
        twilio_account_sid=ACCOUNT,
        speech_workers=1,
        models_dir=MODELS,
        recording_url_prefixes=(recordings.base,),
    ) as running:
        yield running


async def test_a_caller_says_the_tax_invoice_problem_and_reaches_that_desk(
    line: Line, recordings: Recordings, plan: IvrPlan
) -> None:
    # 我们开出去的专票对方说抵扣不了 — said after pressing 8; no key at the confirmation.
    caller = ScriptedCaller(keys=["8", None], recordings=[spoken(recordings, "tax_invoice_zh")])
    record = await line.call(caller)
    assert record.application_error is None
    invoices = plan.specialties["tax-invoice"].name["zh"]
    assert plan.prompts.understood_confirm["zh"].format(desk=invoices) in heard(record)
    assert plan.prompts.connecting["zh"].format(desk=invoices) in heard(record)
    assert enqueued(record) == [("desk-tax-invoice", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert "抵扣" in ticket["transcript"] and "票" in ticket["transcript"]
    understood = ticket["classification"]
    assert understood["candidates"][0][0] == "tax-invoice"
    assert len(understood["candidates"]) == 3 and understood["choice"] == "tax-invoice"
    assert ticket["specialty"] == "tax-invoice" and ticket["status"] == "answered"
    appeal = ticket["appeal_type"]
    assert appeal == understood["appeal"] != "unknown"
    expected = plan.tiers.tier_for(AppealType(appeal))
    assert ticket["feedback_tier"] == expected.value
    assert [r["kind"] for r in ticket["recordings"]] == ["description"]


async def test_the_caller_can_say_no_to_the_suggested_desk(
    line: Line, recordings: Recordings, plan: IvrPlan
) -> None:
    caller = ScriptedCaller(
        keys=["8", "1", "2", "3"], recordings=[spoken(recordings, "tax_invoice_zh")]
    )
    record = await line.call(caller)
    announced = plan.prompts.understood_confirm["zh"].partition("{desk}")[0]
    assert plan.menus["main"].prompt["zh"] in heard(record).split(announced)[1]
    assert enqueued(record) == [("desk-tax-filing", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert ticket["classification"]["choice"] == "rejected"
    assert ticket["menu_path"] == ["main.8", "main.2", "tax.3"]


async def test_between_two_desks_the_caller_chooses(
    recordings: Recordings, tmp_path: Path, plan: IvrPlan
) -> None:
    # 公司只给我们交社保公积金一直没交: social insurance or housing fund? With the shipped
    # thresholds the classifier is sure enough to announce one; here the line is set to
    # confirm only at certainty, so the caller is offered both.
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    speech = config / "speech.yaml"
    speech.write_text(
        speech.read_text(encoding="utf-8")
        .replace("confirm_at: 0.8", "confirm_at: 1.0")
        .replace("choose_at: 0.3", "choose_at: 0.01"),
        encoding="utf-8",
    )
    async with running_line(
        f"sqlite+aiosqlite:///{tmp_path / 'choose.db'}",
        config_dir=config,
        twilio_account_sid=ACCOUNT,
        speech_workers=1,
        models_dir=MODELS,
        recording_url_prefixes=(recordings.base,),
    ) as line:
        caller = ScriptedCaller(
            keys=["8", "2"], recordings=[spoken(recordings, "insurance_or_fund_zh")]
        )
        record = await line.call(caller)
        desks = ("housing-fund", "social-insurance")
        name = {desk: plan.specialties[desk].name["zh"] for desk in desks}
        offered = [
            (first, second)
            for first, second in itertools.permutations(desks)
            if plan.prompts.understood_choose["zh"].format(first=name[first], second=name[second])
            in heard(record)
        ]
        assert len(offered) == 1, heard(record)  # the two desks, in one order or the other
        [(_, second)] = offered
        assert enqueued(record) == [(f"desk-{second}", "bridged")]
        ticket = await line.ticket(record.call_sid)
        assert ticket["classification"]["choice"] == second


async def test_english_words_are_recognised_too(
    line: Line, recordings: Recordings, plan: IvrPlan
) -> None:
    # "we need a work permit for our foreign engineer", in espeak's robotic voice (the only
    # English synthesiser here), decoded by pocketsphinx: what comes through of the words
    # varies with the phrases the model is built from; what must hold is that the English
    # engine heard English words and the dialogue went on in English.
    caller = ScriptedCaller(
        keys=["9", "8", None, "3", "0"], recordings=[spoken(recordings, "work_permit_en")] * 2
    )
    record = await line.call(caller)
    assert record.application_error is None
    ticket = await line.ticket(record.call_sid)
    assert ticket["language"] == "en"
    assert re.fullmatch(r"[a-z' ]+", ticket["transcript"])
    assert ticket["classification"]["problem"] is None
    assert len(ticket["classification"]["candidates"]) == 3
    english = heard(record)
    phrases = (
        plan.prompts.understood_confirm["en"].partition("{desk}")[0],  # a desk's name follows
        plan.prompts.understood_choose["en"].rpartition("}")[2],  # after two desks' names
        plan.prompts.not_understood["en"],
    )
    assert all(phrases) and any(phrase in english for phrase in phrases)
    assert enqueued(record)[-1][1] == "bridged"


def noise(seconds: float) -> bytes:
    rng = random.Random(7)
    return wav([rng.randint(-12000, 12000) for _ in range(int(8000 * seconds))])


BAD = {
    "silence": (wav([0] * 24000), "silence"),
    "one-second": (
        AUDIO.joinpath("tax_invoice_zh.wav").read_bytes()[:44] + b"\x00\x10" * 4000,
        "too-short",
    ),
    "corrupt": (b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + bytes(range(256)) * 20, "corrupt-audio"),
    "not-wav": ("这不是录音".encode() * 100, "corrupt-audio"),
    "missing": (None, "recording-timeout"),  # 404 until the deadline passes
}


@pytest.mark.parametrize("name", list(BAD))
async def test_unusable_recordings_get_the_key_menu_and_a_ticket_that_says_why(
    line: Line, recordings: Recordings, name: str, plan: IvrPlan
) -> None:
    data, problem = BAD[name]
    if data is not None:
        recordings.files[name] = data
    caller = ScriptedCaller(
        keys=["8", "2", "3"], recordings=[spoken(recordings, name), spoken(recordings, name)]
    )
    record = await line.call(caller)
    assert record.application_error is None
    assert plan.prompts.not_understood["zh"] in heard(record)
    assert plan.prompts.use_keys["zh"] in heard(record)
    assert enqueued(record) == [("desk-tax-filing", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert ticket["classification"]["problem"] == problem
    events = [json.loads(x) for x in line.log.getvalue().splitlines()]
    assert any(
        e["event"] == "speech_not_understood"
        and e["problem"] == problem
        and e["call_sid"] == record.call_sid
        for e in events
    )


async def test_noise_is_not_a_matter(line: Line, recordings: Recordings) -> None:
    recordings.files["noise"] = noise(3.0)
    record = await line.call(
        ScriptedCaller(keys=["8", "1", "0"], recordings=[spoken(recordings, "noise")] * 2)
    )
    # Whatever the decoder makes of noise, the caller is never stuck: the general desk.
    assert enqueued(record)[-1][1] == "bridged"
    assert record.application_error is None


async def test_a_recording_not_yet_stored_is_fetched_again(
    line: Line, recordings: Recordings
) -> None:
    recordings.files["late"] = recordings.files["tax_invoice_zh"]
    recordings.not_yet["late"] = 2
    record = await line.call(
        ScriptedCaller(keys=["8", None], recordings=[spoken(recordings, "late")])
    )
    assert recordings.requests.count("late") == 3
    assert enqueued(record) == [("desk-tax-invoice", "bridged")]


async def test_a_slow_recording_server_does_not_hold_other_calls(
    line: Line, recordings: Recordings
) -> None:
    recordings.slow.add("slow")
    recordings.files["slow"] = recordings.files["tax_invoice_zh"]
    slow_call = asyncio.create_task(
        line.call(ScriptedCaller(keys=["8", "0"], recordings=[spoken(recordings, "slow")] * 2))
    )
    await eventually(lambda: "slow" in recordings.requests, "the slow recording asked for")
    started = time.perf_counter()
    other = await line.call(ScriptedCaller(keys=["2", "1"]))
    assert time.perf_counter() - started < 2.0
    assert enqueued(other) == [("desk-tax-registration", "bridged")]
    record = await slow_call
    assert enqueued(record) == [("desk-general", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert ticket["classification"]["problem"] == "recording-timeout"


async def test_a_ten_minute_recording_is_cut_and_never_stalls_the_line(
    line: Line, recordings: Recordings
) -> None:
    one = recordings.files["tax_invoice_zh"]
    with wave.open(io.BytesIO(one)) as w:
        frames = w.readframes(w.getnframes())
    long_frames = (frames + b"\x00\x00" * 4000) * 200  # about ten minutes
    recordings.files["long"] = wav(list(struct.unpack(f"<{len(long_frames) // 2}h", long_frames)))
    record = await line.call(
        ScriptedCaller(keys=["8", None, "1", "0"], recordings=[spoken(recordings, "long")] * 2)
    )
    assert record.application_error is None
    assert enqueued(record)[-1][1] == "bridged"


async def test_an_unknown_language_is_a_problem_not_a_crash(recordings: Recordings) -> None:
    import aiohttp

    config = load_config(CONFIG_DIR)
    pool = SpeechPool(Engines(MODELS / "vosk-model-small-cn-0.22"), workers=1)
    try:
        async with aiohttp.ClientSession() as session:
            understander = Understander(
                RecordingFetcher(session, ACCOUNT, AUTH_TOKEN, (recordings.base,)),
                pool,
                ClassifierCache(config),
            )
            recording = TicketRecording(recordings.url("tax_invoice_zh"), "RE" + "1" * 32, 3)
            result = await understander.understand(recording, "fr", config, None)
            assert result.problem == "unknown-language" and result.candidates == ()
            refused = TicketRecording("https://example.com/x", "RE" + "2" * 32, 3)
            result = await understander.understand(refused, "zh", config, None)
            assert result.problem == "recording-url-refused"
    finally:
        pool.close()


async def test_a_long_recording_is_fetched_whole(recordings: Recordings) -> None:
    import aiohttp

    big = wav([(i * 37) % 20000 - 10000 for i in range(8000 * 40)])  # 40 s, 640 kB
    recordings.files["big"] = big
    async with aiohttp.ClientSession() as session:
        fetcher = RecordingFetcher(session, ACCOUNT, AUTH_TOKEN, (recordings.base,))
        loop = asyncio.get_running_loop()
        body = await fetcher.fetch(recordings.url("big"), loop.time() + 5)
    assert body == big


async def test_a_recording_cut_mid_sample_still_decodes() -> None:
    from speech.audio import decode

    whole = AUDIO.joinpath("tax_invoice_zh.wav").read_bytes()
    pcm = decode(whole[:-1], rate=8000, min_s=0.5, max_s=60)  # one byte short
    assert len(pcm.data) % 2 == 0 and pcm.seconds > 2


async def test_an_after_hours_message_is_read_for_its_desk(
    line: Line, recordings: Recordings, plan: IvrPlan
) -> None:
    # The same words left as a message at night: the callback will put them through to the
    # tax-invoice desk, not the general one.
    was = line.clock.now
    line.clock.now = datetime(2026, 11, 30, 2, 0, tzinfo=SHANGHAI)
    try:
        caller = ScriptedCaller(recordings=[spoken(recordings, "tax_invoice_zh")])
        record = await line.call(caller)
    finally:
        line.clock.now = was
    assert plan.prompts.voicemail_thanks["zh"] in heard(record)
    await line.app[VOICEMAILS].idle()
    ticket = await line.ticket(record.call_sid)
    assert ticket["status"] == "voicemail"
    assert (ticket["specialty"], ticket["department"]) == ("tax-invoice", "tax-bureau")
    assert "抵扣" in ticket["transcript"]
    assert ticket["classification"]["candidates"][0][0] == "tax-invoice"
    assert any(h["note"] == "voicemail understood: tax-invoice" for h in ticket["history"])
