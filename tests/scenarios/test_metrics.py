"""`/metrics`: what a morning of calls adds up to, who may scrape, and a scrape that
survives the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from hotline.carrier.callers import QueueChoice, QueuePlan, Recording, ScriptedCaller
from hotline.config import load_config
from hotline.observability.metrics import Metrics
from hotline.store.engine import make_engine
from hotline.store.spool import OpKind, SpooledOp
from hotline.store.tickets import CallRef
from hotline.twilio.recordings import RecordingFetcher
from hotline.understanding.understander import ClassifierCache, Understander
from hotline.web.keys import METRICS, TICKETS
from hotline.web.metrics import is_local
from ivr.events import Recording as TicketRecording
from speech.pool import Engines, SpeechPool
from tests.support.line import ADMIN_TOKEN, AUTH_TOKEN, NIGHT, NOON, Line, running_line
from tests.support.paths import CONFIG_DIR
from tests.support.recordings import ACCOUNT, MODELS, require_model, serve_recordings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(line: Line, **headers: str) -> tuple[int, str, str]:
    async with line.session.get(line.base_url + "/metrics", headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def samples_of(line: Line) -> Samples:
    status, content_type, body = await scrape(line)
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    return parse(body)


async def test_a_morning_of_calls_in_figures(db_url: str) -> None:
    async with running_line(db_url) as line:
        await line.call(ScriptedCaller(keys=["2", "2"]))  # tax-invoice, answered
        await line.call(  # tax-refund, hangs up waiting
            ScriptedCaller(keys=["2", "4"], queue=QueuePlan(waits=1, then=QueueChoice.HANGUP))
        )
        # Key 8 without speech: not understood twice (asked again, then the key menu).
        await line.call(
            ScriptedCaller(
                keys=["8", "2", "2"], recordings=[Recording(duration=9.0), Recording(duration=7.0)]
            )
        )
        line.clock.now = NIGHT
        await line.call(ScriptedCaller(recordings=[Recording(duration=14.0)]))  # a callback owed
        line.clock.now = NIGHT.replace(hour=12)
        got = await samples_of(line)

    assert value(got, "hotline_queue_joins_total", specialty="tax-invoice") == 2
    assert value(got, "hotline_queue_joins_total", specialty="tax-refund") == 1
    assert value(got, "hotline_queue_abandons_total", specialty="tax-refund") == 1
    assert value(got, "hotline_queue_abandons_total", specialty="tax-invoice") is None
    # The outcome logged for each webhook: the menu (then a redirect on silence), the queue.
    outcomes = {
        ("voice", "redirect:no-input"): 3,
        ("voice", "hangup"): 1,  # after hours: the message, then goodbye
        ("route", "enqueue:desk-tax-invoice"): 2,
        ("route", "enqueue:desk-tax-refund"): 1,
        ("queue-done", "hangup"): 3,
    }
    for (route, outcome), count in outcomes.items():
        assert value(got, "hotline_call_outcomes_total", route=route, outcome=outcome) == count
    assert value(got, "hotline_call_outcomes_total", route="status", outcome="call-ended") == 4
    assert value(got, "hotline_classification_outcomes_total", outcome="say-again") == 1
    assert value(got, "hotline_classification_outcomes_total", outcome="key-menu") == 1
    assert value(got, "hotline_speech_problems_total", problem="no-speech-engine") == 2
    assert value(got, "hotline_speech_seconds_count", lang="zh", result="not-understood") == 2
    assert value(got, "hotline_callback_jobs", kind="callback", state="pending") == 1
    assert value(got, "hotline_callback_jobs", kind="survey", state="pending") == 0
    assert value(got, "hotline_callback_jobs_fresh") == 1
    assert value(got, "hotline_spool_depth") == 0
    menu = dict(route="/twilio/menu", method="POST", status="200")
    assert (value(got, "hotline_http_request_duration_seconds_count", **menu) or 0) >= 4
    voice = dict(route="/twilio/voice", method="POST", status="200")
    assert value(got, "hotline_http_request_duration_seconds_count", **voice) == 4


async def test_route_labels_are_templates_not_urls(tmp_path: Path) -> None:
    async with running_line(f"sqlite+aiosqlite:///{tmp_path / 'labels.db'}") as line:
        for hook in ("no-such-hook-1234", "x" * 200):
            posted = await line.carrier.post(f"/twilio/{hook}?lang=zz", {"CallSid": "x"})
            assert posted.status == 404
        await line.carrier.post("/twilio/menu?node=%00secret-node", {"Digits": "1"})
        async with line.session.get(line.base_url + "/no/such/page/5678") as response:
            assert response.status == 404
        async with line.session.delete(line.base_url + "/healthz") as response:
            assert response.status == 405
        await line.api("/api/tickets/E20261130-000777")
        status, _, body = await scrape(line)
    assert status == 200
    routes = {
        dict(labels)["route"]
        for (name, labels) in parse(body)
        if name == "hotline_http_request_duration_seconds_count"
    }
    assert routes == {
        "/twilio/{hook}",
        "/twilio/menu",
        "unmatched",
        "/api/tickets/{number}",
    }, routes
    for raw in ("no-such-hook", "secret-node", "5678", "E20261130-000777", "xxxxxxxx"):
        assert raw not in body


async def test_a_scrape_survives_the_database(db_url: str) -> None:
    async with running_line(db_url) as line:
        line.clock.now = NIGHT
        await line.call(ScriptedCaller(recordings=[Recording(duration=14.0)]))
        before = await samples_of(line)
        assert value(before, "hotline_callback_jobs", kind="callback", state="pending") == 1
        engine = make_engine(db_url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE callback_jobs"))
        await engine.dispose()
        after = await samples_of(line)
        assert value(after, "hotline_callback_jobs", kind="callback", state="pending") == 1
        assert value(after, "hotline_callback_jobs_fresh") == 0
        assert '"event":"metrics_jobs_unread"' in line.log.getvalue()


async def test_the_spool_depth_is_read_at_each_scrape(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'spool.db'}"
    async with running_line(database, spool_replay_every_s=3600) as line:
        # The line's own spool holds a write (as while the database is away): the gauge
        # says so at the next scrape, and is back to 0 once it is replayed.
        tickets = line.app[TICKETS]
        call = CallRef("CA" + "5" * 32, "+8613812348000", "+8610123450000")
        op = SpooledOp("CA5:token", OpKind.RECORD, call, NOON, (), opening=True)
        assert tickets.spool.append(op, NOON)
        assert value(await samples_of(line), "hotline_spool_depth") == 1
        result = await tickets.replay()
        assert result.applied == 1 and tickets.spool.depth() == 0
        assert value(await samples_of(line), "hotline_spool_depth") == 0
        metrics = line.app[METRICS]
        metrics.set_spool_depth_source(lambda: 3)
        assert value(await samples_of(line), "hotline_spool_depth") == 3

        def broken() -> int:
            raise OSError("spool unreadable")

        metrics.set_spool_depth_source(broken)
        assert value(await samples_of(line), "hotline_spool_depth") == 3  # the last figure


async def test_who_may_scrape(tmp_path: Path) -> None:
    async with running_line(f"sqlite+aiosqlite:///{tmp_path / 'scrape.db'}") as line:
        assert (await scrape(line))[0] == 200  # loopback
        # Through a proxy on this host, loopback is not who is asking.
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            status, _, body = await scrape(line, **{header: "203.0.113.9"})
            assert status == 401 and '"unauthorized"' in body, (header, status)
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        assert (await scrape(line, Authorization=f"Bearer {ADMIN_TOKEN}", **proxied))[0] == 200
        assert (await scrape(line, Authorization="Bearer wrong", **proxied))[0] == 401
        assert '"event":"metrics_refused"' in line.log.getvalue()
    for local in ("127.0.0.1", "::1", "10.2.3.4", "172.16.0.9", "192.168.1.20", "fd00::5"):
        assert is_local(local), local
    assert is_local("::ffff:10.0.0.7") and is_local("fe80::1%eth0")
    for remote in ("203.0.113.9", "8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "", None):
        assert not is_local(remote), remote
    assert not is_local("not-an-address")


def test_two_apps_count_apart() -> None:
    one, two = Metrics(), Metrics()
    one.queue_joined("tax-invoice")
    assert (
        value(
            parse(one.exposition().decode()), "hotline_queue_joins_total", specialty="tax-invoice"
        )
        == 1
    )
    assert (
        value(
            parse(two.exposition().decode()), "hotline_queue_joins_total", specialty="tax-invoice"
        )
        is None
    )
    one.call_outcome("voice", "enqueue:desk-general")
    one.call_outcome("voice", "\x00 not a label <script>")
    outcomes = parse(one.exposition().decode())
    assert value(outcomes, "hotline_call_outcomes_total", route="voice", outcome="other") == 1


# -- speech: latency and real-time factor ----------------------------------------------------


@pytest_asyncio.fixture
async def recordings() -> AsyncIterator[str]:
    async with serve_recordings() as store:
        yield store.base


async def test_speech_latency_and_real_time_factor(recordings: str) -> None:
    require_model()
    config = load_config(CONFIG_DIR)
    metrics = Metrics()
    pool = SpeechPool(Engines(MODELS / "vosk-model-small-cn-0.22"), workers=1)
    try:
        await pool.warm_up()  # the model loads before the deadline starts
        async with aiohttp.ClientSession() as session:
            understander = Understander(
                RecordingFetcher(session, ACCOUNT, AUTH_TOKEN, (recordings,)),
                pool,
                ClassifierCache(config),
                metrics=metrics,
            )
            said = TicketRecording(f"{recordings}/Recordings/tax_invoice_zh", "RE" + "1" * 32, 3)
            understood = await understander.understand(said, "zh", config, None)
            assert understood.problem is None and understood.candidates
            refused = TicketRecording("https://example.com/x", "RE" + "2" * 32, 3)
            await asyncio.wait_for(understander.understand(refused, "zh", config, None), 10)
    finally:
        pool.close()
    got = parse(metrics.exposition().decode())
    assert value(got, "hotline_speech_seconds_count", lang="zh", result="understood") == 1
    assert value(got, "hotline_speech_real_time_factor_count", lang="zh") == 1
    rtf_sum = value(got, "hotline_speech_real_time_factor_sum", lang="zh") or 0.0
    assert 0 < rtf_sum < 5
    assert value(got, "hotline_speech_problems_total", problem="recording-url-refused") == 1
