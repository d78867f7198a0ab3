"""Load benchmark: many concurrent virtual calls against real `hotline serve` processes.

Two setups, each started here as subprocesses on loopback ports:

  (a) one `hotline serve` on SQLite;
  (b) two `hotline serve` on PostgreSQL and Redis, behind nginx (deploy/nginx.conf, when
      nginx is on the PATH) or else a round robin in this client.

Against each, the virtual carrier (hotline.carrier, real signed webhooks) places `--calls`
calls, at most `--concurrency` at once: the DTMF path (two keys to a desk, a queue, an
agent), the speech path (key 8, a description, the key menu) and the after-hours path (a
voicemail, with the line closed by its emergency switch). Callers take `--think` seconds
(on average) at each prompt, as people do, so the calls overlap as real ones would.
It prints p50/p95/p99 latency per webhook route, calls per second, errors, the tickets
found through the ops API against the calls placed, and each process's peak memory.

Then, in the same run, the menu webhook's throughput at saturation (closed loop,
`--workers` requests in flight) against the same setup and against a bare aiohttp handler
(same topology) that answers the same TwiML document, and their ratio.

A benchmark, not a test: it prints PASS/FAIL against the targets and exits 0.
See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/load.py`, this directory heads sys.path (see bench/speech.py).
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import yaml

from hotline.carrier.callers import (
    GatherInfo,
    HangUp,
    QueueChoice,
    QueueInfo,
    QueuePlan,
    RecordInfo,
    Recording,
    ScriptedCaller,
)
from hotline.carrier.carrier import (
    SIGNATURE_HEADER,
    Signing,
    VirtualCarrier,
    WebhookResponse,
    compute_signature,
)
from hotline.config import load_config
from ivr.model import ToMenu, ToSpecialty

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ADMIN_TOKEN = "bench-admin-token"
PUBLIC_URL = "https://hotline.example.gov"
ACCOUNT_SID = "AC" + "0" * 32
CALLED = "+8610123450000"

# Targets of the issue "Scale out and never lose a call".
CONCURRENT_TARGET = 500
MENU_P99_TARGET_S = 0.050
THROUGHPUT_RATIO_TARGET = 0.40
MENU_ROUTE = "/twilio/menu"

# The bare baseline: an aiohttp app that reads the body and answers a fixed document.
BARE_PROGRAM = """
import sys
from aiohttp import web
document = open(sys.argv[2], "rb").read()
async def answer(request):
    await request.read()
    return web.Response(body=document, content_type="text/xml")
app = web.Application()
app.router.add_post("/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def peak_memory_mb(self) -> float | None:
        """VmHWM: the most resident memory the process ever had."""
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None

    def cpu_seconds(self) -> float:
        """User and system CPU time so far (/proc/<pid>/stat)."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def hotline_command(profile: Path | None = None) -> list[str]:
    """`hotline`, in this interpreter; under pyinstrument (its text report in `profile`)."""
    if profile is None:
        return [sys.executable, "-m", "hotline.cli"]
    report = ["-r", "text", "-o", str(profile)]
    return [sys.executable, "-m", "pyinstrument", *report, "-m", "hotline.cli"]


def start(name: str, argv: Sequence[str], env: Mapping[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        list(argv), env=dict(env), stdout=handle, stderr=subprocess.STDOUT, cwd=logs
    )
    handle.close()
    return Process(name, popen, log)


async def wait_ready(
    session: aiohttp.ClientSession, url: str, process: Process, seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited: see {process.log}")
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(url) as response:
                if response.status in (200, 404, 405):
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{process.name} did not answer {url} within {seconds} s")


def server_env(
    database_url: str, config_dir: Path, logs: Path, name: str, redis: str = "", prefix: str = ""
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
    env.update(
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        HOTLINE_PUBLIC_URL=PUBLIC_URL,
        HOTLINE_ADMIN_TOKEN=ADMIN_TOKEN,
        HOTLINE_DATABASE_URL=database_url,
        HOTLINE_SPEECH_WORKERS="0",  # no recognizers: the speech path takes its fallback
        HOTLINE_LOG_LEVEL="info",  # as in production: one JSON line per webhook
        HOTLINE_SPOOL_PATH=str(logs / f"{name}-spool.db"),
    )
    if redis:
        env.update(HOTLINE_REDIS_URL=redis, HOTLINE_REDIS_PREFIX=prefix)
    return env


# --------------------------------------------------------------------------- balancers


def nginx_config(upstreams: Sequence[int], listen: int, workdir: Path) -> Path:
    """deploy/nginx.conf itself, pointed at loopback ports and a private working directory."""
    text = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    servers = "".join(
        f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=5s;\n" for p in upstreams
    )
    lines = []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("server hotline-"):
            if servers:
                lines.append(servers)
                servers = ""
            continue
        if stripped.startswith("listen "):
            line = f"        listen 127.0.0.1:{listen};\n"
        elif stripped.startswith("pid "):
            line = f"pid {workdir / 'nginx.pid'};\n"
        elif stripped.startswith("error_log "):
            line = f"error_log {workdir / 'nginx-error.log'} warn;\n"
        lines.append(line)
    temp = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = "".join(lines).replace("http {\n", "http {\n" + temp, 1)
    path = workdir / "nginx.conf"
    path.write_text(config, encoding="utf-8")
    return path


@dataclass
class Front:
    """Where the client sends requests: one base URL, or several taken in turn."""

    bases: list[str]
    kind: str
    processes: list[Process] = field(default_factory=list)
    _next: int = 0

    def base(self) -> str:
        self._next = (self._next + 1) % len(self.bases)
        return self.bases[self._next]


async def front_for(
    ports: Sequence[int], workdir: Path, session: aiohttp.ClientSession, label: str
) -> Front:
    if len(ports) == 1:
        return Front([f"http://127.0.0.1:{ports[0]}"], "direct")
    # Debian puts nginx in /usr/sbin, which is not on every PATH.
    nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")
    if nginx is None:
        return Front([f"http://127.0.0.1:{p}" for p in ports], "client round robin")
    nginx_dir = workdir / f"nginx-{label}"
    nginx_dir.mkdir()
    listen = free_port()
    config = nginx_config(ports, listen, nginx_dir)
    check = await asyncio.to_thread(
        subprocess.run, [nginx, "-t", "-q", "-c", str(config)], capture_output=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t: {check.stderr.decode()}")
    process = start(
        f"nginx-{label}", [nginx, "-c", str(config), "-g", "daemon off;"], os.environ, nginx_dir
    )
    process.port = listen
    front = Front([f"http://127.0.0.1:{listen}"], "nginx (deploy/nginx.conf)", [process])
    await wait_ready(session, front.bases[0] + "/", process)
    return front


# --------------------------------------------------------------------------- the calls


@dataclass
class Sample:
    route: str
    seconds: float
    status: int


class TimedCarrier(VirtualCarrier):
    """The virtual carrier, timing every webhook it sends; spread over `front`'s bases."""

    def __init__(self, front: Front, session: aiohttp.ClientSession) -> None:
        super().__init__(
            front.bases[0],
            AUTH_TOKEN,
            session,
            account_sid=ACCOUNT_SID,
            public_url=PUBLIC_URL,
            queue_max_size=1000,
        )
        self.front = front
        self.samples: list[Sample] = []

    async def send(
        self,
        url: str,
        method: str,
        params: Mapping[str, str],
        *,
        signing: Signing | None = None,
        idempotency_token: str | None = None,
        via: str | None = None,
    ) -> WebhookResponse:
        # The URL stays the public one (it is what is signed); the request goes to a base
        # (the front's choice: `via` pins a call to one process only in the tests).
        self.base_url = self.front.base()
        route = urlsplit(url).path
        started = time.perf_counter()
        try:
            response = await super().send(
                url, method, params, signing=signing, idempotency_token=idempotency_token
            )
        except Exception:
            self.samples.append(Sample(route, time.perf_counter() - started, 0))
            raise
        self.samples.append(Sample(route, time.perf_counter() - started, response.status))
        return response


class PacedCaller(ScriptedCaller):
    """A scripted caller who listens before answering, as people do (`think` s on average)."""

    def __init__(self, think: float, rng: random.Random, **script: Any) -> None:
        super().__init__(**script)
        self._think = think
        self._rng = rng

    async def pause(self) -> None:
        await asyncio.sleep(self._think * self._rng.uniform(0.5, 1.5))

    async def press(self, prompt: GatherInfo) -> str | HangUp | None:
        await self.pause()
        return await super().press(prompt)

    async def record(self, prompt: RecordInfo) -> Recording | HangUp | None:
        await self.pause()
        return await super().record(prompt)

    async def in_queue(self, info: QueueInfo) -> QueueChoice:
        await self.pause()
        return await super().in_queue(info)


@dataclass(frozen=True)
class PlannedCall:
    path: str  # dtmf | speech | after-hours
    keys: tuple[str, ...]
    caller: str
    expected_status: str


def desk_keys(config_dir: Path) -> list[tuple[str, str]]:
    """(group key, desk key) of every desk two presses from the main menu."""
    plan = load_config(config_dir).plan
    root = plan.menus[plan.root]
    pairs = []
    for key, option in root.options.items():
        if not isinstance(option.target, ToMenu):
            continue
        for desk_key, desk_option in plan.menus[option.target.menu].options.items():
            if isinstance(desk_option.target, ToSpecialty):
                pairs.append((key, desk_key))
    return pairs


def plan_calls(
    calls: int, mix: Mapping[str, float], desks: list[tuple[str, str]]
) -> list[PlannedCall]:
    rng = random.Random(12345)
    counts = {path: int(calls * share) for path, share in mix.items()}
    counts["dtmf"] += calls - sum(counts.values())
    planned = []
    for path, count in counts.items():
        for _ in range(count):
            number = f"+86139{rng.randrange(10**8):08d}"  # one call per caller number
            group, desk = rng.choice(desks)
            if path == "dtmf":
                planned.append(PlannedCall(path, (group, desk), number, "answered"))
            elif path == "speech":
                planned.append(PlannedCall(path, ("8", group, desk), number, "answered"))
            else:
                planned.append(PlannedCall(path, (), number, "voicemail"))
    # Distinct numbers: the service limits new calls per caller number.
    assert len({p.caller for p in planned}) == len(planned)
    return planned


def caller_for(call: PlannedCall, think: float, rng: random.Random) -> PacedCaller:
    queue = QueuePlan(waits=1, then=QueueChoice.BRIDGED)
    if call.path == "speech":
        recordings = [Recording(duration=8.0), Recording(duration=6.0)]
        return PacedCaller(think, rng, keys=call.keys, recordings=recordings, queue=queue)
    if call.path == "after-hours":
        return PacedCaller(think, rng, recordings=[Recording(duration=20.0)])
    return PacedCaller(think, rng, keys=call.keys, queue=queue)


@dataclass
class Wave:
    placed: list[tuple[PlannedCall, str, str]] = field(default_factory=list)  # call, sid, end
    seconds: float = 0.0
    peak_in_progress: int = 0
    failed_calls: list[str] = field(default_factory=list)


async def place_calls(
    carrier: TimedCarrier,
    calls: Sequence[PlannedCall],
    concurrency: int,
    ramp: float,
    think: float,
) -> Wave:
    wave = Wave()
    gate = asyncio.Semaphore(concurrency)
    in_progress = 0
    rng = random.Random(7)
    started = time.perf_counter()

    async def one(i: int, call: PlannedCall) -> None:
        nonlocal in_progress
        await asyncio.sleep(ramp * i / max(1, len(calls)))
        async with gate:
            in_progress += 1
            wave.peak_in_progress = max(wave.peak_in_progress, in_progress)
            try:
                record = await carrier.place_call(
                    caller_for(call, think, rng), from_number=call.caller, to_number=CALLED
                )
            except Exception as exc:  # a crash of the simulation itself
                wave.failed_calls.append(f"{call.path}: {type(exc).__name__}: {exc}")
                return
            finally:
                in_progress -= 1
        wave.placed.append((call, record.call_sid, record.ended_by))
        if record.ended_by == "application-error":
            wave.failed_calls.append(f"{call.path} {record.call_sid}: {record.application_error}")

    await asyncio.gather(*(one(i, c) for i, c in enumerate(calls)))
    wave.seconds = time.perf_counter() - started
    return wave


def open_all_day(config_dir: Path) -> None:
    """The servers run on the wall clock: the open-line calls must not meet closed hours
    when the benchmark runs at night. After hours is the emergency switch's (below)."""
    line = config_dir / "line.yaml"
    data = yaml.safe_load(line.read_text(encoding="utf-8"))
    data["hours"].update(open="00:00", close="24:00", overrides=[])
    line.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


async def set_line_closed(
    config_dir: Path, closed: bool, servers: Sequence[Process], session: aiohttp.ClientSession
) -> None:
    """The runbook's emergency switch: edit line.yaml, SIGHUP, wait for every process."""
    line = config_dir / "line.yaml"
    data = yaml.safe_load(line.read_text(encoding="utf-8"))
    data["hours"]["emergency_closed"] = closed
    line.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    digest = load_config(config_dir).digest
    for server in servers:
        server.popen.send_signal(signal.SIGHUP)
    for server in servers:
        for _ in range(100):
            async with session.get(f"http://127.0.0.1:{server.port}/healthz") as response:
                if (await response.json())["config"]["digest"] == digest:
                    break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{server.name} did not take the config change")


async def settled_tickets(
    session: aiohttp.ClientSession,
    base: str,
    placed: Sequence[tuple[PlannedCall, str, str]],
    seconds: float,
) -> tuple[dict[str, dict[str, Any]], float]:
    """The tickets once every call's is complete (or `seconds` passed): writes a process
    could not make in time wait in its spool and land a moment later."""
    started = time.perf_counter()
    while True:
        tickets = await tickets_by_call(session, base)
        done = all(
            sid in tickets
            and tickets[sid]["status"] == call.expected_status
            and tickets[sid].get("call_status")
            for call, sid, _ in placed
        )
        waited = time.perf_counter() - started
        if done or waited >= seconds:
            return tickets, waited
        await asyncio.sleep(1.0)


async def tickets_by_call(session: aiohttp.ClientSession, base: str) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        url = f"{base}/api/tickets?limit=200&offset={offset}"
        async with session.get(url, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"GET {url}: {response.status} {await response.text()}")
            page = await response.json()
        for ticket in page["tickets"]:
            found[ticket["call_sid"]] = ticket
        offset += len(page["tickets"])
        if not page["tickets"] or offset >= page["total"]:
            return found


# --------------------------------------------------------------------------- throughput


def signed_form(path: str, params: Mapping[str, str]) -> tuple[str, bytes, dict[str, str]]:
    body = urlencode(params).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        SIGNATURE_HEADER: compute_signature(AUTH_TOKEN, PUBLIC_URL + path, params),
    }
    return path, body, headers


def call_params(sid: str, caller: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid,
        "From": caller,
        "To": CALLED,
        "Caller": caller,
        "Called": CALLED,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **extra,
    }


async def menu_path(session: aiohttp.ClientSession, front: Front) -> str:
    """The URL the main menu's <Gather> posts to, read from a real answer."""
    sid = "CA" + secrets.token_hex(16)
    path, body, headers = signed_form("/twilio/voice", call_params(sid, "+8613700000000"))
    async with session.post(front.base() + path, data=body, headers=headers) as response:
        text = await response.text()
    start = text.index('action="') + len('action="')
    action = text[start : text.index('"', start)].replace("&amp;", "&")
    return urlsplit(action).path + ("?" + urlsplit(action).query if urlsplit(action).query else "")


async def blast(
    session: aiohttp.ClientSession,
    front: Front,
    requests: Sequence[tuple[str, bytes, dict[str, str]]],
    workers: int,
) -> tuple[float, list[float], int]:
    """Send every request with `workers` in flight; (seconds, latencies, errors)."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while queue:
            path, body, headers = queue.pop()
            started = time.perf_counter()
            try:
                async with session.post(front.base() + path, data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
            except (aiohttp.ClientError, OSError):
                errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started, latencies, errors


@dataclass
class Throughput:
    per_second: float
    p50: float
    p99: float
    errors: int
    rounds: tuple[float, ...] = ()  # requests per second of every round; this is the best


def best(rounds: Sequence[Throughput]) -> Throughput:
    """The fastest round, with every round's rate: a 2-core machine's other work (or the
    client's own) slows a round now and then, the server's own speed never speeds it up."""
    fastest = max(rounds, key=lambda r: r.per_second)
    return replace(fastest, rounds=tuple(r.per_second for r in rounds))


async def menu_throughput(
    session: aiohttp.ClientSession, front: Front, count: int, workers: int
) -> tuple[Throughput, bytes]:
    """Menu webhooks of `count` calls already started (their voice webhooks, untimed)."""
    action = await menu_path(session, front)
    sids = [("CA" + secrets.token_hex(16), f"+86137{i:08d}") for i in range(count)]
    voice = [signed_form("/twilio/voice", call_params(sid, caller)) for sid, caller in sids]
    await blast(session, front, voice, workers)
    menu = [
        signed_form(action, call_params(sid, caller, Digits="2", FinishedOnKey=""))
        for sid, caller in sids
    ]
    # One more, to keep its document for the bare server (the same bytes on the wire).
    path, body, headers = menu[0]
    async with session.post(front.base() + path, data=body, headers=headers) as response:
        document = await response.read()
    seconds, latencies, errors = await blast(session, front, menu, workers)
    return _throughput(count, seconds, latencies, errors), document


async def bare_throughput(
    session: aiohttp.ClientSession, front: Front, count: int, workers: int, action: str
) -> Throughput:
    sids = [("CA" + secrets.token_hex(16), f"+86136{i:08d}") for i in range(count)]
    menu = [
        signed_form(action, call_params(sid, caller, Digits="2", FinishedOnKey=""))
        for sid, caller in sids
    ]
    await blast(session, front, menu[: max(1, count // 10)], workers)  # warm-up
    seconds, latencies, errors = await blast(session, front, menu, workers)
    return _throughput(count, seconds, latencies, errors)


async def rounds_of(rounds: int, measure: Callable[[], Awaitable[Throughput]]) -> Throughput:
    return best([await measure() for _ in range(rounds)])


def _throughput(count: int, seconds: float, latencies: list[float], errors: int) -> Throughput:
    return Throughput(count / seconds, quantile(latencies, 0.5), quantile(latencies, 0.99), errors)


# --------------------------------------------------------------------------- figures


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


class LiveViewers:
    """`count` supervisors with the live page open: each an event stream of /api/live/events
    (every change re-reads the line), read to the end of each event and thrown away."""

    def __init__(self, session: aiohttp.ClientSession, front: Front, count: int) -> None:
        self._session = session
        self._front = front
        self._count = count
        self._tasks: list[asyncio.Task[None]] = []
        self.events = 0

    async def _watch(self) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        url = self._front.base() + "/api/live/events"
        async with self._session.get(url, headers=headers, timeout=timeout) as response:
            async for line in response.content:
                if line.startswith(b"data:"):
                    self.events += 1

    async def __aenter__(self) -> LiveViewers:
        self._tasks = [asyncio.create_task(self._watch()) for _ in range(self._count)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class LagProbe:
    """How late this client's own event loop wakes up: its share of the latencies."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.lags.append(loop.time() - before - 0.01)

    def __enter__(self) -> LagProbe:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def server_durations(
    processes: Sequence[Process], offsets: Mapping[str, int]
) -> dict[str, list[float]]:
    """The `webhook` log events' `duration_ms` (the handler's own time) per route."""
    by_route: dict[str, list[float]] = defaultdict(list)
    for process in processes:
        with process.log.open("rb") as handle:
            handle.seek(offsets.get(process.name, 0))
            for raw in handle:
                if b'"webhook"' not in raw:
                    continue
                with contextlib.suppress(ValueError):
                    event = json.loads(raw)
                    if event.get("event") == "webhook" and "duration_ms" in event:
                        by_route[event["route"]].append(event["duration_ms"] / 1000)
    return by_route


def log_offsets(processes: Sequence[Process]) -> dict[str, int]:
    return {p.name: p.log.stat().st_size for p in processes}


@dataclass
class SetupResult:
    label: str
    front: str
    calls: int
    seconds: float
    peak_in_progress: int
    samples: list[Sample]
    errors: list[str]
    tickets_found: int
    tickets_complete: int
    wrong_status: list[str]
    memory: dict[str, float | None]
    handler: dict[str, list[float]]
    lag_p99: float
    menu: Throughput
    bare: Throughput
    bare_memory: dict[str, float | None]
    speech_note: str
    settled_s: float
    cpu_per_webhook: float
    live_streams: int = 0
    live_events: int = 0

    @property
    def menu_p99(self) -> float:
        return quantile([s.seconds for s in self.samples if s.route == MENU_ROUTE], 0.99)

    @property
    def ratio(self) -> float:
        return self.menu.per_second / self.bare.per_second


def print_setup(result: SetupResult) -> None:
    print(f"\n== {result.label} ==")
    print(f"front: {result.front}")
    print(
        f"calls placed {result.calls} in {result.seconds:.1f} s:"
        f" {result.calls / result.seconds:.1f} calls/s;"
        f" at most {result.peak_in_progress} in progress at once"
    )
    by_route: dict[str, list[float]] = defaultdict(list)
    for sample in result.samples:
        by_route[sample.route].append(sample.seconds)
    print("webhook latency (client, loopback), ms; and the handler's own (server log):")
    print(f"  {'route':<24}{'count':>7}{'p50':>8}{'p95':>8}{'p99':>8}   handler p50/p99")
    for route in sorted(by_route, key=lambda r: -len(by_route[r])):
        values = by_route[route]
        handler = result.handler.get(route.removeprefix("/twilio/"), [])
        own = f"{ms(quantile(handler, 0.5)).strip()}/{ms(quantile(handler, 0.99)).strip()}"
        print(
            f"  {route:<24}{len(values):>7}{ms(quantile(values, 0.5)):>8}"
            f"{ms(quantile(values, 0.95)):>8}{ms(quantile(values, 0.99)):>8}"
            f"   {own if handler else '-'}"
        )
    print(f"  this client's event-loop lag p99: {result.lag_p99 * 1000:.1f} ms")
    if result.live_streams:
        print(
            f"live view: {result.live_streams} event streams open through the calls,"
            f" {result.live_events} snapshots received"
        )
    print(f"server CPU per webhook (all processes): {result.cpu_per_webhook * 1000:.2f} ms")
    print(f"errors: {len(result.errors)}")
    for line in result.errors[:10]:
        print(f"  {line}")
    print(
        f"tickets found {result.tickets_found} of {result.calls} calls placed"
        f" ({result.calls - result.tickets_found} lost); {result.tickets_complete} with the"
        f" call's end recorded; {len(result.wrong_status)} in an unexpected status"
        f" (read {result.settled_s:.0f} s after the last call)"
    )
    for line in result.wrong_status[:10]:
        print(f"  {line}")
    print(f"speech path: {result.speech_note}")
    print("peak memory (VmHWM):")
    for name, mb in {**result.memory, **result.bare_memory}.items():
        print(f"  {name:<24}{'-' if mb is None else f'{mb:.0f} MB'}")
    menu, bare = result.menu, result.bare
    print("menu webhook at saturation (closed loop):")
    print(
        f"  hotline      {menu.per_second:8.0f} req/s  p50 {ms(menu.p50).strip()} ms"
        f"  p99 {ms(menu.p99).strip()} ms  errors {menu.errors}"
    )
    print(
        f"  bare aiohttp {bare.per_second:8.0f} req/s  p50 {ms(bare.p50).strip()} ms"
        f"  p99 {ms(bare.p99).strip()} ms  errors {bare.errors}"
    )
    for name, figures in (("hotline", menu), ("bare aiohttp", bare)):
        rates = ", ".join(f"{r:.0f}" for r in figures.rounds)
        print(f"  {name} rounds: {rates} req/s (the best is taken)")
    print(f"  ratio hotline / bare: {result.ratio:.0%}")


# --------------------------------------------------------------------------- setups


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    import asyncpg

    name = f"hotline_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def redis_prefix(url: str) -> AsyncIterator[str]:
    """A key prefix of this run alone; its keys are removed afterwards (never FLUSHALL)."""
    import redis.asyncio as aioredis

    prefix = f"bench-{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        client = aioredis.from_url(url)  # type: ignore[no-untyped-call]
        try:
            async for key in client.scan_iter(match=f"{prefix}*"):
                await client.delete(key)
        finally:
            await client.aclose()


async def run_setup(
    key: str,
    label: str,
    args: argparse.Namespace,
    workdir: Path,
    database_url: str,
    servers_wanted: int,
    session: aiohttp.ClientSession,
    redis: str = "",
    prefix: str = "",
) -> SetupResult:
    config_dir = workdir / f"config-{key}"
    shutil.copytree(args.config, config_dir)
    open_all_day(config_dir)
    logs = workdir / f"logs-{key}"
    logs.mkdir()
    migrate = await asyncio.to_thread(
        subprocess.run,
        [*hotline_command(), "db", "upgrade"],
        env=server_env(database_url, config_dir, logs, "migrate", redis, prefix),
        capture_output=True,
        cwd=logs,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"hotline db upgrade: {migrate.stderr.decode()[-2000:]}")
    servers: list[Process] = []
    bares: list[Process] = []
    fronts: list[Front] = []
    try:
        for i in range(servers_wanted):
            name = f"hotline-{i + 1}"
            port = free_port()
            profile = args.profile / f"{key}-{name}.txt" if args.profile else None
            argv = [*hotline_command(profile), "serve", "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--config", str(config_dir)]
            env = server_env(database_url, config_dir, logs, name, redis, prefix)
            server = start(name, argv, env, logs)
            server.port = port
            servers.append(server)
        for server in servers:
            await wait_ready(session, f"http://127.0.0.1:{server.port}/healthz", server)
        front = await front_for([s.port for s in servers], workdir, session, key)
        fronts.append(front)
        print(f"[{label}] {len(servers)} server(s) up behind {front.kind}", file=sys.stderr)

        desks = desk_keys(config_dir)
        mix = {"dtmf": args.dtmf, "speech": args.speech, "after-hours": args.after_hours}
        planned = plan_calls(args.calls, mix, desks)
        carrier = TimedCarrier(front, session)
        # A few calls first, so that every process has its connections and caches warm.
        warm = plan_calls(4 * servers_wanted, {"dtmf": 1.0}, desks)
        warm = [
            PlannedCall(c.path, c.keys, "+86135" + c.caller[6:], c.expected_status) for c in warm
        ]
        await place_calls(carrier, warm, len(warm), 0.0, 0.0)
        carrier.samples.clear()
        offsets = log_offsets(servers)
        cpu_before = sum(s.cpu_seconds() for s in servers)

        async with LiveViewers(session, front, args.live_streams) as viewers:
            with LagProbe() as probe:
                open_calls = [c for c in planned if c.path != "after-hours"]
                closed_calls = [c for c in planned if c.path == "after-hours"]
                print(f"[{label}] {len(open_calls)} calls with the line open", file=sys.stderr)
                opened = await place_calls(
                    carrier, open_calls, args.concurrency, args.ramp, args.think
                )
                print(f"[{label}] closing the line (emergency switch, SIGHUP)", file=sys.stderr)
                await set_line_closed(config_dir, True, servers, session)
                print(f"[{label}] {len(closed_calls)} calls after hours", file=sys.stderr)
                closed = await place_calls(
                    carrier, closed_calls, args.concurrency, args.ramp, args.think
                )
                await set_line_closed(config_dir, False, servers, session)
        handler = server_durations(servers, offsets)

        cpu = sum(s.cpu_seconds() for s in servers) - cpu_before
        placed = opened.placed + closed.placed
        tickets, settled = await settled_tickets(session, front.base(), placed, args.settle)
        found = [(c, sid) for c, sid, _ in placed if sid in tickets]
        complete = sum(1 for _, sid in found if tickets[sid].get("call_status"))
        wrong = [
            f"{c.path} {sid}: {tickets[sid]['status']} (expected {c.expected_status})"
            for c, sid in found
            if tickets[sid]["status"] != c.expected_status
        ]
        problems = {
            (tickets[sid].get("classification") or {}).get("problem")
            for c, sid in found
            if c.path == "speech"
        }
        speech_note = (
            "fallback: the servers run without recognizers (HOTLINE_SPEECH_WORKERS=0), so each"
            " description ends in the key menu"
            f" (problems on the tickets: {', '.join(sorted(str(p) for p in problems))})"
        )
        errors = (
            [
                f"{s.route}: HTTP {s.status or 'no answer'}"
                for s in carrier.samples
                if s.status != 200
            ]
            + opened.failed_calls
            + closed.failed_calls
        )
        memory = {s.name: s.peak_memory_mb() for s in servers}

        print(f"[{label}] menu throughput at saturation", file=sys.stderr)
        document = b""

        async def hotline_round() -> Throughput:
            nonlocal document
            figures, document = await menu_throughput(
                session, front, args.menu_requests, args.workers
            )
            return figures

        menu = await rounds_of(args.rounds, hotline_round)
        memory = {s.name: s.peak_memory_mb() for s in servers}
        action = await menu_path(session, front)

        document_file = workdir / f"menu-{key}.xml"
        document_file.write_bytes(document)
        for i in range(servers_wanted):
            port = free_port()
            argv = [sys.executable, "-c", BARE_PROGRAM, str(port), str(document_file)]
            bare = start(f"bare-{i + 1}", argv, os.environ, logs)
            bare.port = port
            bares.append(bare)
        for bare in bares:
            await wait_ready(session, f"http://127.0.0.1:{bare.port}/", bare)
        bare_front = await front_for([b.port for b in bares], workdir, session, f"{key}-bare")
        fronts.append(bare_front)
        print(f"[{label}] bare aiohttp throughput", file=sys.stderr)
        bare_figures = await rounds_of(
            args.rounds,
            lambda: bare_throughput(session, bare_front, args.menu_requests, args.workers, action),
        )
        bare_memory = {b.name: b.peak_memory_mb() for b in bares}
        return SetupResult(
            label=label,
            front=front.kind,
            calls=len(placed),
            seconds=opened.seconds + closed.seconds,
            peak_in_progress=max(opened.peak_in_progress, closed.peak_in_progress),
            samples=carrier.samples,
            errors=errors,
            tickets_found=len(found),
            tickets_complete=complete,
            wrong_status=wrong,
            memory=memory,
            handler=handler,
            lag_p99=quantile(probe.lags, 0.99),
            menu=menu,
            bare=bare_figures,
            bare_memory=bare_memory,
            speech_note=speech_note,
            settled_s=settled,
            cpu_per_webhook=cpu / max(1, len(carrier.samples)),
            live_streams=args.live_streams,
            live_events=viewers.events,
        )
    finally:
        for front in fronts:
            for process in front.processes:
                process.stop()
        for process in [*bares, *servers]:
            process.stop()


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 625 calls of the default mix are 500 on the open line, all in progress at once at
    # this pace, and then 125 after hours.
    parser.add_argument("--calls", type=int, default=625, help="calls placed per setup")
    parser.add_argument("--concurrency", type=int, default=500, help="calls in progress at most")
    # 4 s (2-6 s) at each prompt: quicker than people are. The shipped main menu is 125
    # characters of Chinese, 25 s or so to hear to its end; a group's menu 80.
    parser.add_argument(
        "--think", type=float, default=4.0, help="seconds a caller takes at a prompt (mean)"
    )
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which calls start")
    parser.add_argument("--dtmf", type=float, default=0.6, help="share of DTMF-path calls")
    parser.add_argument("--speech", type=float, default=0.2, help="share of speech-path calls")
    parser.add_argument("--after-hours", type=float, default=0.2, help="share of after-hours calls")
    parser.add_argument(
        "--menu-requests", type=int, default=4000, help="menu webhooks at saturation, a round"
    )
    parser.add_argument("--workers", type=int, default=32, help="requests in flight at saturation")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds at saturation, each side (best taken)"
    )
    parser.add_argument(
        "--live-streams", type=int, default=0, help="live-page event streams open meanwhile"
    )
    parser.add_argument("--setups", default="sqlite,postgres", help="sqlite, postgres, or both")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "HOTLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="an admin URL; a database is made for the run and dropped after",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--config", type=Path, default=ROOT / "config")
    parser.add_argument(
        "--settle", type=float, default=30.0, help="seconds to wait for spooled ticket writes"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="pyinstrument each server"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, metavar="DIR", help="work here and keep the logs"
    )
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> list[SetupResult]:
    results: list[SetupResult] = []
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="hotline-load-") as tmp:
        workdir = Path(args.keep or tmp)
        os.makedirs(workdir, exist_ok=True)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=15)  # Twilio's own limit
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            if "sqlite" in setups:
                url = f"sqlite+aiosqlite:///{workdir / 'hotline.db'}"
                results.append(
                    await run_setup("a", "(a) one process, SQLite", args, workdir, url, 1, session)
                )
                print_setup(results[-1])
            if "postgres" in setups:
                async with (
                    postgres_database(args.postgres) as url,
                    redis_prefix(args.redis) as prefix,
                ):
                    results.append(
                        await run_setup(
                            "b",
                            "(b) two processes, PostgreSQL and Redis",
                            args,
                            workdir,
                            url,
                            2,
                            session,
                            args.redis,
                            prefix,
                        )
                    )
                print_setup(results[-1])
    return results


def summary(results: Sequence[SetupResult], calls: int) -> None:
    print("\n== summary: targets ==")
    for r in results:
        ok_errors = not r.errors
        ok_lost = r.tickets_found == r.calls == calls
        ok_p99 = r.menu_p99 < MENU_P99_TARGET_S
        ok_ratio = r.ratio >= THROUGHPUT_RATIO_TARGET
        ok_concurrent = r.peak_in_progress >= CONCURRENT_TARGET
        print(r.label)
        print(
            f"  {CONCURRENT_TARGET} calls in progress at once: at most {r.peak_in_progress}:"
            f" {verdict(ok_concurrent)}"
        )
        print(f"  zero errors: {len(r.errors)} errors: {verdict(ok_errors)}")
        lost = r.calls - r.tickets_found
        print(f"  zero lost tickets: {lost} lost of {r.calls}: {verdict(ok_lost)}")
        print(f"  menu webhook p99 < 50 ms: {r.menu_p99 * 1000:.1f} ms: {verdict(ok_p99)}")
        print(f"  menu throughput >= 40% of bare aiohttp: {r.ratio:.0%}: {verdict(ok_ratio)}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()
    print("== load benchmark ==")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()},"
        f" load average at start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    )
    print(
        f"calls per setup: {args.calls} ({args.dtmf:.0%} DTMF, {args.speech:.0%} speech,"
        f" {args.after_hours:.0%} after hours), at most {args.concurrency} at once, started"
        f" over {args.ramp:g} s; callers take {args.think:g} s per prompt on average"
    )
    results = asyncio.run(main_async(args))
    summary(results, args.calls)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
