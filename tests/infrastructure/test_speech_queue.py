"""Speech on its own processes: `hotline speech-worker` (the real Vosk model) fed through a
job queue on the real Redis, a webhook server that has no model of its own, and what the
caller gets when the workers are down or stalled: the key menu within the deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis

from hotline.carrier.callers import ScriptedCaller
from hotline.cli import main
from hotline.settings import Settings, SettingsError
from hotline.understanding.queue import RECOGNISE_JOB, QueuedSpeech
from ivr.model import IvrPlan
from speech.pool import SpeechProblem
from tests.support.line import Line, enqueued, heard, running_line
from tests.support.paths import CONFIG_DIR, ROOT
from tests.support.recordings import (
    ACCOUNT,
    AUDIO,
    MODELS,
    Recordings,
    require_model,
    serve_recordings,
    spoken,
)
from tests.support.redis_proxy import drop_prefix, redis_or_skip, unique_prefix
from tests.support.waiting import eventually

DEADLINE_S = 4.0  # recognition.deadline_s, as shipped
TAX_INVOICE = AUDIO / "tax_invoice_zh.wav"  # 我们开出去的专票对方说抵扣不了


class SpeechWorker:
    """A `hotline speech-worker` process on `queue`, and its JSON log (kept across restarts)."""

    def __init__(self, queue: str, redis_url: str, config: Path, logs: Path) -> None:
        self.queue = queue
        self._env = {
            **os.environ,
            "HOTLINE_REDIS_URL": redis_url,
            "HOTLINE_SPEECH_QUEUE": queue,
            "HOTLINE_MODELS_DIR": str(MODELS),
            "HOTLINE_LOG_LEVEL": "info",
        }
        self._config = config
        logs.mkdir(parents=True, exist_ok=True)
        self.log, self.errors = logs / "worker.log", logs / "worker.err"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        # One decoding process: the model loads in about 2 s.
        command = ["speech-worker", "--config", str(self._config), "--workers", "1"]
        with self.log.open("ab") as out, self.errors.open("ab") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", *command],
                cwd=ROOT,
                env=self._env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own group: nothing of it outlives the test
            )

    def restart(self) -> None:
        self.end()
        self.process = self._start()
        self.wait_ready()

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                found.append(event)
        return found

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until this process has loaded the model (about 2 s; more on a busy machine)."""
        until = time.monotonic() + timeout_s
        while self.process.poll() is None and not self._ready():
            if time.monotonic() > until:
                break
            time.sleep(0.1)
        if not self._ready():
            self.end()
            pytest.fail(
                "the speech worker did not start: "
                + self.errors.read_text(encoding="utf-8")[-3000:]
            )

    def _ready(self) -> bool:
        return any(e.get("pid") == self.process.pid for e in self.events("speech_worker_ready"))

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.process.pid, sig)

    def decoders(self) -> set[int]:
        """The pids of its decoding processes (Linux)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        return {int(p) for p in children.read_text().split()} if children.exists() else set()

    def end(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def redis_url() -> str:
    return asyncio.run(redis_or_skip())


@pytest.fixture(scope="module")
def prefix(redis_url: str) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    asyncio.run(drop_prefix(redis_url, prefix))


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped config, with the key menu after one recording not understood."""
    require_model()
    config = tmp_path_factory.mktemp("queue") / "config"
    shutil.copytree(CONFIG_DIR, config)
    speech = config / "speech.yaml"
    text = speech.read_text(encoding="utf-8")
    assert f"deadline_s: {DEADLINE_S}" in text and "attempts: 2" in text
    speech.write_text(text.replace("attempts: 2", "attempts: 1"), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def worker(
    redis_url: str, prefix: str, config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SpeechWorker]:
    started = SpeechWorker(prefix + "speech", redis_url, config, tmp_path_factory.mktemp("w"))
    try:
        started.wait_ready()
        yield started
    finally:
        started.end()


@pytest_asyncio.fixture
async def recordings() -> AsyncIterator[Recordings]:
    async with serve_recordings({"tax_invoice_zh": TAX_INVOICE.read_bytes()}) as store:
        yield store


def queued_line(
    database_url: str,
    redis_url: str,
    prefix: str,
    queue: str,
    config: Path,
    tmp_path: Path,
    recordings: Recordings,
) -> contextlib.AbstractAsyncContextManager[Line]:
    """A webhook server in queue mode, with an empty models directory: no model needed."""
    return running_line(
        database_url,
        config_dir=config,
        twilio_account_sid=ACCOUNT,
        speech_workers=1,
        speech_mode="queue",
        speech_queue=queue,
        redis_url=redis_url,
        redis_prefix=prefix,
        models_dir=tmp_path / "no-models",
        recording_url_prefixes=(recordings.base,),
    )


@pytest_asyncio.fixture
async def line(
    db_url: str,
    redis_url: str,
    prefix: str,
    config: Path,
    worker: SpeechWorker,
    recordings: Recordings,
    tmp_path: Path,
) -> AsyncIterator[Line]:
    async with queued_line(
        db_url, redis_url, prefix, worker.queue, config, tmp_path, recordings
    ) as running:
        yield running


async def says_tax_invoice(line: Line, recordings: Recordings, plan: IvrPlan) -> None:
    prompts, invoices = plan.prompts, plan.specialties["tax-invoice"].name["zh"]
    caller = ScriptedCaller(keys=["8", None], recordings=[spoken(recordings, "tax_invoice_zh")])
    record = await line.call(caller)
    assert record.application_error is None
    ticket = await line.ticket(record.call_sid)
    assert ticket["classification"]["problem"] is None, ticket["classification"]
    assert prompts.understood_confirm["zh"].format(desk=invoices) in heard(record)
    assert enqueued(record) == [("desk-tax-invoice", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert "抵扣" in ticket["transcript"]
    assert ticket["classification"]["candidates"][0][0] == "tax-invoice"
    assert ticket["specialty"] == "tax-invoice" and ticket["status"] == "answered"


async def gets_the_key_menu_in_time(line: Line, recordings: Recordings, plan: IvrPlan) -> str:
    """The caller describes the matter, no worker answers: the key menu within the deadline."""
    caller = ScriptedCaller(keys=["8", "2", "3"], recordings=[spoken(recordings, "tax_invoice_zh")])
    started = time.perf_counter()
    record = await line.call(caller)
    elapsed = time.perf_counter() - started
    assert elapsed < DEADLINE_S + 1.0, elapsed
    assert record.application_error is None
    assert plan.prompts.use_keys["zh"] in heard(record)
    assert enqueued(record) == [("desk-tax-filing", "bridged")]
    ticket = await line.ticket(record.call_sid)
    assert ticket["classification"]["problem"] == "speech-timeout"
    assert ticket["menu_path"] == ["main.8", "main.2", "tax.3"]
    failed = [
        e
        for e in map(json.loads, line.log.getvalue().splitlines())
        if e["event"] == "speech_not_understood" and e["call_sid"] == record.call_sid
    ]
    assert [e["problem"] for e in failed] == ["speech-timeout"]
    assert DEADLINE_S - 0.2 < failed[0]["seconds"] < DEADLINE_S + 0.5
    return record.call_sid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def queue_empties(redis_url: str, queue: str) -> None:
    """The webhook that gave up took its job off the queue: no worker will ever start it."""
    client = Redis.from_url(redis_url)

    async def empty() -> bool:
        left: int = await client.zcard(queue)
        return left == 0

    try:
        await eventually(empty, f"no job left on {queue}", timeout_s=1.0)
    finally:
        await client.aclose()


async def test_a_caller_is_understood_by_a_speech_worker_through_the_queue(
    line: Line, recordings: Recordings, worker: SpeechWorker, plan: IvrPlan
) -> None:
    done = len(worker.events("speech_job"))
    await says_tax_invoice(line, recordings, plan)
    jobs = worker.events("speech_job")[done:]
    assert jobs and all(j["problem"] is None and j["lang"] == "zh" for j in jobs)
    assert jobs[0]["passes"] == "free"
    assert 0 < jobs[0]["left_ms"] <= DEADLINE_S * 1000


async def test_a_stalled_worker_gives_the_key_menu_in_time_and_never_runs_stale_jobs(
    line: Line, recordings: Recordings, worker: SpeechWorker, redis_url: str, plan: IvrPlan
) -> None:
    done = len(worker.events("speech_job"))
    stale_id = f"stale-{uuid.uuid4().hex}"
    worker.signal(signal.SIGSTOP)
    try:
        await gets_the_key_menu_in_time(line, recordings, plan)
        await queue_empties(redis_url, worker.queue)
        # A job whose webhook died before it could take it back: it expires unstarted.
        client = ArqRedis(ConnectionPool.from_url(redis_url))
        try:
            stale = await client.enqueue_job(
                RECOGNISE_JOB,
                TAX_INVOICE.read_bytes(),
                "zh",
                (),
                "free",
                1,
                _job_id=stale_id,
                _queue_name=worker.queue,
                _expires=0.2,
            )
            assert stale is not None
            await asyncio.sleep(0.4)
        finally:
            await client.aclose()
    finally:
        worker.signal(signal.SIGCONT)
    # The worker is back: the next caller is understood, and nothing stale was decoded.
    await says_tax_invoice(line, recordings, plan)
    jobs = worker.events("speech_job")[done:]
    assert jobs and all(j["problem"] is None for j in jobs)
    assert stale_id not in {j["job"] for j in jobs}
    await queue_empties(redis_url, worker.queue)


async def test_with_the_worker_killed_callers_get_the_key_menu_until_one_is_back(
    redis_url: str,
    prefix: str,
    config: Path,
    worker: SpeechWorker,
    recordings: Recordings,
    tmp_path: Path,
    plan: IvrPlan,
) -> None:
    async with queued_line(
        f"sqlite+aiosqlite:///{tmp_path / 'killed.db'}",
        redis_url,
        prefix,
        worker.queue,
        config,
        tmp_path,
        recordings,
    ) as line:
        await says_tax_invoice(line, recordings, plan)
        decoders = worker.decoders()
        assert decoders, "no decoding process under the speech worker"
        worker.process.kill()
        worker.process.wait(10)
        await gets_the_key_menu_in_time(line, recordings, plan)
        await queue_empties(redis_url, worker.queue)
        # Its decoding processes do not linger, holding their models, once it is gone.
        await eventually(
            lambda: not any(map(alive, decoders)), f"decoders {decoders} gone with their worker"
        )
        done = len(worker.events("speech_job"))
        await asyncio.to_thread(worker.restart)
        await says_tax_invoice(line, recordings, plan)
        jobs = worker.events("speech_job")[done:]
        assert jobs and all(j["problem"] is None for j in jobs)


async def test_an_unreachable_redis_fails_at_once() -> None:
    speech = QueuedSpeech("redis://127.0.0.1:1/0", "nowhere")
    started = time.perf_counter()
    try:
        with pytest.raises(SpeechProblem) as failed:
            await speech.recognise(TAX_INVOICE.read_bytes(), "zh", (), DEADLINE_S)
    finally:
        await speech.aclose()
    assert failed.value.problem == "speech-queue-unreachable"
    assert time.perf_counter() - started < 1.5


def test_the_speech_mode_setting() -> None:
    assert Settings.from_env({}).speech_mode == "local"
    queued = Settings.from_env({"HOTLINE_SPEECH": "Queue", "HOTLINE_REDIS_URL": "redis://r"})
    assert queued.speech_mode == "queue" and queued.speech_queue == "hotline:speech"
    queued.check_speech_mode()
    with pytest.raises(SettingsError, match="HOTLINE_REDIS_URL"):
        Settings(speech_mode="queue").check_speech_mode()
    with pytest.raises(SettingsError, match="local or queue"):
        Settings(speech_mode="remote").check_speech_mode()


def test_a_speech_worker_needs_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_REDIS_URL", raising=False)
    assert main(["speech-worker", "--config", str(CONFIG_DIR)]) == 2
