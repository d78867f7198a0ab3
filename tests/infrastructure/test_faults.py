"""Faults played against real processes and servers: PostgreSQL unreachable or slow (through
a TCP proxy: the shared server is never stopped), a server process killed mid-call, Twilio
retrying webhooks, config reloads mid-call.

Select them with `-m faults`. HOTLINE_FAULT_OUTAGE_S sets the length of the outage (30 s, as
the issue demands, unless set).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from hotline.carrier.callers import GatherInfo, KeyAnswer, Recording, ScriptedCaller
from hotline.carrier.carrier import CallRecord, VirtualCarrier
from hotline.store.engine import make_engine
from hotline.store.tables import callback_jobs, recordings, ticket_history, tickets
from hotline.web.keys import CONFIG, TICKETS
from ivr.model import IvrPlan
from tests.support.config_files import open_all_day
from tests.support.databases import database_url
from tests.support.line import (
    ADMIN_TOKEN,
    AUTH_TOKEN,
    NIGHT,
    NOON,
    PUBLIC_URL,
    Line,
    free_port,
    running_line,
)
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

OUTAGE_S = float(os.environ.get("HOTLINE_FAULT_OUTAGE_S") or 30)
WEBHOOK_LIMIT_S = 2.0


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh PostgreSQL database of this test (skipped, or failed in CI, without a server)."""
    async for url in database_url("postgresql", tmp_path):
        yield url


@pytest.fixture
async def proxied(postgres: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """The test database's URL through a proxy the test can cut or slow down."""
    target = make_url(postgres)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        yield target.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        await proxy.close()


def dtmf_caller() -> ScriptedCaller:
    return ScriptedCaller(keys=["2", "1"])  # tax, then tax registration: its queue


def voicemail_caller() -> ScriptedCaller:
    return ScriptedCaller(recordings=[Recording(duration=12.0)])


async def call_at(line: Line, when: datetime, caller: ScriptedCaller) -> CallRecord:
    line.clock.now = when
    record = await line.call(caller)
    assert record.application_error is None, record.application_error
    return record


async def both_paths(line: Line) -> list[CallRecord]:
    """A call to a desk's queue at noon, and a voicemail at night."""
    return [
        await call_at(line, NOON, dtmf_caller()),
        await call_at(line, NIGHT, voicemail_caller()),
    ]


async def counts(url: str, call_sids: list[str]) -> dict[str, dict[str, Any]]:
    """Straight from the database: per call, its tickets, history notes, recordings, jobs."""
    engine = make_engine(url)
    found: dict[str, dict[str, Any]] = {}
    try:
        async with engine.connect() as conn:
            for sid in call_sids:
                ids = list(
                    await conn.scalars(select(tickets.c.id).where(tickets.c.call_sid == sid))
                )
                notes = list(
                    await conn.scalars(
                        select(ticket_history.c.note)
                        .where(ticket_history.c.ticket_id.in_(ids))
                        .order_by(ticket_history.c.id)
                    )
                )
                found[sid] = {
                    "tickets": len(ids),
                    "notes": notes,
                    "recordings": await conn.scalar(
                        select(func.count())
                        .select_from(recordings)
                        .where(recordings.c.ticket_id.in_(ids))
                    ),
                    "jobs": await conn.scalar(
                        select(func.count())
                        .select_from(callback_jobs)
                        .where(callback_jobs.c.ticket_id.in_(ids))
                    ),
                    "row": (
                        await conn.execute(
                            select(
                                tickets.c.status,
                                tickets.c.menu_path,
                                tickets.c.queue,
                                tickets.c.channel,
                                tickets.c.call_ended_at,
                            ).where(tickets.c.id.in_(ids))
                        )
                    ).all(),
                }
            total = await conn.scalar(select(func.count()).select_from(tickets))
    finally:
        await engine.dispose()
    found["*"] = {"tickets": total}
    return found


def same_shape(found: dict[str, Any], reference: dict[str, Any]) -> None:
    """One ticket with the reference call's history, recordings and jobs: none lost, none
    doubled."""
    assert found["tickets"] == 1, found
    assert found["notes"] == reference["notes"], (found, reference)
    assert found["recordings"] == reference["recordings"]
    assert found["jobs"] == reference["jobs"]
    ((status, menu_path, queue, channel, ended),) = found["row"]
    ((r_status, r_menu_path, r_queue, r_channel, r_ended),) = reference["row"]
    assert (status, menu_path, queue, channel) == (r_status, r_menu_path, r_queue, r_channel)
    assert (ended is None) == (r_ended is None)


@pytest.mark.parametrize("outage_s", [OUTAGE_S], ids=[f"{OUTAGE_S:g}s"])
async def test_postgres_unreachable_for_30_s_loses_and_doubles_no_ticket(
    proxied: tuple[str, TcpProxy], postgres: str, tmp_path: Path, outage_s: float, plan: IvrPlan
) -> None:
    url, proxy = proxied
    async with running_line(
        url, spool_path=tmp_path / "spool.db", spool_replay_every_s=0.2
    ) as line:
        durable = line.app[TICKETS]
        reference = await both_paths(line)
        assert durable.spool.depth() == 0

        await proxy.cut()
        cut_at = time.monotonic()
        during: list[CallRecord] = []
        while True:  # calls all through the outage, both paths
            during.append(await call_at(line, NOON, dtmf_caller()))
            during.append(await call_at(line, NIGHT, voicemail_caller()))
            if time.monotonic() - cut_at > outage_s - 1.5:
                break
            await asyncio.sleep(min(2.5, outage_s / 10))
        for record in during:  # routed as usual: the queue, or the voicemail
            if record.queue_results:
                assert [(q.queue, q.result) for q in record.queue_results] == [
                    ("desk-tax-registration", "bridged")
                ]
            else:
                thanks = plan.prompts.voicemail_thanks["zh"]
                assert any(thanks in said for said in record.said)
        assert sum(1 for r in during if r.queue_results) == len(during) // 2
        # Every webhook's ticket write (voice, menu x2, route, queue-done, status; voice,
        # voicemail, status) is on disk, none replayed while the database is away.
        assert durable.spool.depth() >= len(during) * 3
        await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - cut_at)))
        assert durable.spool.depth() >= len(during) * 3

        await proxy.restore()
        await eventually(lambda: durable.spool.depth() == 0, "the spool replayed", timeout_s=30)
        assert durable.spool.set_aside_count() == 0
        assert '"event":"ticket_spooled"' in line.log.getvalue()
        assert '"event":"spool_replayed"' in line.log.getvalue()

    sids = [r.call_sid for r in reference + during]
    found = await counts(postgres, sids)
    assert found["*"]["tickets"] == len(sids)  # none lost, none doubled
    dtmf_ref, voicemail_ref = found[reference[0].call_sid], found[reference[1].call_sid]
    assert voicemail_ref["jobs"] == 1 and voicemail_ref["recordings"] == 1
    for record in during:
        same_shape(found[record.call_sid], dtmf_ref if record.queue_results else voicemail_ref)


async def test_a_server_started_while_its_database_is_away_answers_and_keeps_the_tickets(
    proxied: tuple[str, TcpProxy], postgres: str, tmp_path: Path, plan: IvrPlan
) -> None:
    """A process (re)started during an outage, on a database never migrated: it starts,
    routes its callers, spools their tickets, and when the database answers it brings the
    schema up and replays them, each once."""
    url, proxy = proxied
    await proxy.cut()
    async with running_line(
        url, spool_path=tmp_path / "spool.db", spool_replay_every_s=0.2
    ) as line:
        durable = line.app[TICKETS]
        during = await both_paths(line)
        assert [(q.queue, q.result) for q in during[0].queue_results] == [
            ("desk-tax-registration", "bridged")
        ]
        assert any(plan.prompts.voicemail_thanks["zh"] in said for said in during[1].said)
        _, health = await line.api("/healthz", token=None)
        assert health["status"] == "degraded" and health["database"] == "unreachable"
        assert not durable.ready and durable.spool.depth() >= 6

        await proxy.restore()
        await eventually(
            lambda: durable.ready and durable.spool.depth() == 0,
            "the schema brought up and the spool replayed",
            timeout_s=30,
        )
        assert '"event":"database_unreachable_at_start"' in line.log.getvalue()
        assert '"event":"database_reachable"' in line.log.getvalue()
        reference = await both_paths(line)

    sids = [r.call_sid for r in during + reference]
    found = await counts(postgres, sids)
    assert found["*"]["tickets"] == 4
    for record, like in zip(during, reference, strict=True):
        same_shape(found[record.call_sid], found[like.call_sid])


async def test_a_database_that_answers_with_an_error_at_start_stops_the_process(
    postgres: str,
) -> None:
    """Away is waited for; wrong is not: a database that does not exist is a fault to fix."""
    missing = make_url(postgres).set(database="hotline_no_such_database")
    with pytest.raises(Exception, match="does not exist"):
        async with running_line(missing.render_as_string(hide_password=False)):
            pass


# -- Twilio retries ------------------------------------------------------------------------

RETRIED_SID = "CA" + "7" * 32
FORM = {
    "CallSid": RETRIED_SID,
    "From": "+8613912345678",
    "To": "+8610123450000",
    "AccountSid": "AC" + "0" * 32,
    "CallStatus": "in-progress",
}


async def test_retried_webhooks_and_a_doubled_status_callback_record_once(db_url: str) -> None:
    async with running_line(db_url) as line:
        line.clock.now = NIGHT
        post = line.carrier.post
        for _ in range(2):
            assert (await post("/twilio/voice", FORM, idempotency_token="t-voice")).status == 200
        described = {
            **FORM,
            "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1",
            "RecordingSid": "RE" + "1" * 32,
            "RecordingDuration": "9",
        }
        for _ in range(3):  # the same description, retried: understood (attempted) once
            answer = await post(
                "/twilio/described?lang=zh&node=main", described, idempotency_token="t-described"
            )
            assert answer.status == 200 and ET.fromstring(answer.body).tag == "Response"
        voicemail = {**described, "RecordingSid": "RE" + "2" * 32, "RecordingDuration": "14"}
        for _ in range(2):
            await post("/twilio/voicemail?lang=zh&node=main", voicemail, idempotency_token="t-vm")
        ended = {**FORM, "CallStatus": "completed", "CallDuration": "40"}
        await post("/twilio/status", ended, idempotency_token="t-status")
        await post("/twilio/status", ended, idempotency_token="t-status")  # Twilio's retry
        await post("/twilio/status", ended, idempotency_token="t-status-2")  # a second callback

        found = (await counts(db_url, [RETRIED_SID]))[RETRIED_SID]
        assert found["tickets"] == 1
        assert found["notes"].count("call received") == 1
        assert found["notes"].count("call completed") == 1
        assert found["notes"] == [
            "call received",
            "line closed: voicemail",
            "description not understood: no-speech-engine",
            "voicemail recorded",
            "call completed",
        ]
        assert found["recordings"] == 2 and found["jobs"] == 1
        ticket = await line.ticket(RETRIED_SID)
        assert ticket["classification"]["attempts"] == 1
        assert ticket["call_duration_s"] == 40


async def test_a_second_description_is_not_taken_for_a_retry(db_url: str) -> None:
    """The key is the webhook's token, not its content: a new request is recorded."""
    async with running_line(db_url) as line:
        await line.carrier.post("/twilio/voice", FORM)
        described = {
            **FORM,
            "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1",
            "RecordingSid": "RE" + "1" * 32,
            "RecordingDuration": "9",
        }
        for token in ("first", "second"):
            await line.carrier.post(
                "/twilio/described?lang=zh&node=main", described, idempotency_token=token
            )
        ticket = await line.ticket(RETRIED_SID)
        assert ticket["classification"]["attempts"] == 2


# -- a slow database -----------------------------------------------------------------------


class TimedSession:
    """Wall time of every request an aiohttp session makes."""

    def __init__(self) -> None:
        self.times: list[tuple[str, float]] = []
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._start)
        self.trace.on_request_end.append(self._end)

    async def _start(self, _s: Any, context: Any, _p: aiohttp.TraceRequestStartParams) -> None:
        context.started = time.monotonic()

    async def _end(self, _s: Any, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
        self.times.append((params.url.path, time.monotonic() - context.started))


async def test_a_slow_database_never_holds_a_webhook_past_2_s(
    proxied: tuple[str, TcpProxy], postgres: str, tmp_path: Path
) -> None:
    url, proxy = proxied
    async with running_line(
        url, spool_path=tmp_path / "spool.db", spool_replay_every_s=0.2
    ) as line:
        timed = TimedSession()
        async with aiohttp.ClientSession(trace_configs=[timed.trace]) as session:
            carrier = VirtualCarrier(line.base_url, AUTH_TOKEN, session, public_url=PUBLIC_URL)
            proxy.delay_s = 5.0  # every chunk, each way: a query takes 10 s or more
            records = []
            for when, caller in (
                (NOON, dtmf_caller()),
                (NIGHT, voicemail_caller()),
                (NOON, dtmf_caller()),
            ):
                line.clock.now = when
                records.append(await carrier.place_call(caller))
            asked = time.monotonic()
            async with session.get(line.base_url + "/healthz") as probe:
                health = await probe.json()
            assert time.monotonic() - asked < WEBHOOK_LIMIT_S  # the probe is not held either
            assert (health["status"], health["database"]) == ("degraded", "unreachable")
        proxy.delay_s = 0.0
        for record in records:
            assert record.application_error is None
            for exchange in record.exchanges:
                assert exchange.status == 200, exchange
                assert ET.fromstring(exchange.body).tag == "Response"
        assert records[0].queue_results[0].queue == "desk-tax-registration"
        slowest = max(seconds for _, seconds in timed.times)
        assert len(timed.times) >= 15 and slowest < WEBHOOK_LIMIT_S, timed.times
        durable = line.app[TICKETS]
        await eventually(lambda: durable.spool.depth() == 0, "the spool replayed", timeout_s=30)

    found = await counts(postgres, [r.call_sid for r in records])
    assert found["*"]["tickets"] == 3
    for record in records:
        assert found[record.call_sid]["tickets"] == 1
        assert found[record.call_sid]["row"][0][4] is not None  # the call's end is recorded


# -- config reloads ------------------------------------------------------------------------


class ReloadingCaller(ScriptedCaller):
    """Keys 2 (tax), then at the tax menu waits while the test changes the config."""

    def __init__(self, at_tax_menu: Any) -> None:
        super().__init__(keys=["2", "1"])
        self._at_tax_menu = at_tax_menu

    async def press(self, prompt: GatherInfo) -> KeyAnswer:
        if len(self.gathers) == 1:
            await self._at_tax_menu()
        return await super().press(prompt)


async def test_a_reload_applies_to_new_calls_while_calls_in_progress_keep_their_menu(
    db_url: str, config_copy: Path
) -> None:
    menus = config_copy / "menus.yaml"
    original = menus.read_text(encoding="utf-8")
    async with running_line(db_url, config_dir=config_copy) as line:
        live = line.app[CONFIG]
        started_on = live.current.digest

        async def invalid_then_valid_edit() -> None:
            # An invalid edit: refused, the old config serving, the errors on /healthz.
            menus.write_text(original + "\nnot_a_field: 1\n", encoding="utf-8")
            await eventually(lambda: live.errors, "the invalid config refused", timeout_s=10)
            status, health = await line.api("/healthz", token=None)
            assert status == 200 and health["status"] == "degraded"
            assert health["config"]["digest"] == started_on
            assert any("menus.yaml" in e for e in health["config"]["errors"])
            assert '"event":"config_rejected"' in line.log.getvalue()
            # A valid one: keys 1 and 2 of the tax menu swap desks.
            swapped = original.replace(
                '"1": {specialty: tax-registration}', '"1": {specialty: tax-invoice}', 1
            ).replace('"2": {specialty: tax-invoice}', '"2": {specialty: tax-registration}', 1)
            assert swapped != original
            menus.write_text(swapped, encoding="utf-8")
            await eventually(
                lambda: live.current.digest != started_on, "the config reloaded", timeout_s=10
            )
            assert not live.errors

        in_progress = await line.call(ReloadingCaller(invalid_then_valid_edit))
        assert in_progress.application_error is None
        # Pressed 1 at the tax menu it heard before the reload: that menu's desk.
        assert [q.queue for q in in_progress.queue_results] == ["desk-tax-registration"]
        new_call = await line.call(dtmf_caller())
        assert [q.queue for q in new_call.queue_results] == ["desk-tax-invoice"]
        _status, health = await line.api("/healthz", token=None)
        assert health["config"]["errors"] == [] and health["config"]["digest"] != started_on


# -- a server process killed mid-call -------------------------------------------------------


class Server:
    """A real `hotline serve` process (the console script), on its own port and spool."""

    def __init__(self, database: str, config: Path, spool: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")},
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "HOTLINE_PUBLIC_URL": PUBLIC_URL,
            "HOTLINE_ADMIN_TOKEN": ADMIN_TOKEN,
            "HOTLINE_DATABASE_URL": database,
            "HOTLINE_SPEECH_WORKERS": "0",
            "HOTLINE_SPOOL_PATH": str(spool),
        }
        command = [str(Path(sys.executable).parent / "hotline"), "serve"]
        command += ["--port", str(self.port), "--config", str(config)]
        self._log = log.open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=self._log)

    async def ready(self, session: aiohttp.ClientSession, timeout_s: float = 120) -> None:
        async def answers() -> bool:
            assert self.process.poll() is None, "the server exited at start"
            try:
                async with session.get(self.url + "/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(answers, f"{self.url} started", timeout_s=timeout_s, every_s=0.2)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def servers(postgres: str, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    # Open round the clock, New Year's Day too: the processes run on the wall clock.
    config = open_all_day(tmp_path)
    plain = postgres.replace("postgresql+asyncpg://", "postgresql://", 1)
    a = Server(plain, config, tmp_path / "a-spool.db", tmp_path / "a.log")
    b = Server(plain, config, tmp_path / "b-spool.db", tmp_path / "b.log")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


class FailingOverCaller(ScriptedCaller):
    """At the second menu, process A dies and the call's next webhooks go to process B."""

    def __init__(self, carrier_box: list[VirtualCarrier], a: Server, b: Server) -> None:
        super().__init__(keys=["2", "1"])
        self._carrier_box, self._a, self._b = carrier_box, a, b

    async def press(self, prompt: GatherInfo) -> KeyAnswer:
        if len(self.gathers) == 1:
            self._a.kill()
            self._carrier_box[0].base_url = self._b.url
        return await super().press(prompt)


async def test_a_call_survives_its_server_process_being_killed(
    servers: tuple[Server, Server], postgres: str, plan: IvrPlan
) -> None:
    a, b = servers
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(a.ready(session), b.ready(session))
        reference = await VirtualCarrier(
            b.url, AUTH_TOKEN, session, public_url=PUBLIC_URL
        ).place_call(dtmf_caller())
        box: list[VirtualCarrier] = []
        carrier = VirtualCarrier(a.url, AUTH_TOKEN, session, public_url=PUBLIC_URL)
        box.append(carrier)
        record = await carrier.place_call(FailingOverCaller(box, a, b))
        assert a.process.returncode == -signal.SIGKILL
        assert record.application_error is None
        hosts = [e.url for e in record.exchanges]
        assert len(hosts) >= 5
        # The main menu's key went to A; the tax menu's key, on, to B: where the call was.
        assert [(q.queue, q.result) for q in record.queue_results] == [
            ("desk-tax-registration", "bridged")
        ]
        assert any(plan.menus["tax"].prompt["zh"] in said for said in record.said)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with session.get(
            f"{b.url}/api/tickets?call_sid={record.call_sid}", headers=headers
        ) as response:
            listed = await response.json()
        assert listed["total"] == 1
        ticket = listed["tickets"][0]
        assert ticket["menu_path"] == ["main.2", "tax.1"]
        assert ticket["queue"] == "desk-tax-registration" and ticket["call_ended_at"]
    found = await counts(postgres, [reference.call_sid, record.call_sid])
    same_shape(found[record.call_sid], found[reference.call_sid])
