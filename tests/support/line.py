"""A running hotline for scenario tests: the real app on loopback, a real database, the
virtual carrier as Twilio (with a stand-in of its REST API), and a clock the test sets."""

from __future__ import annotations

import asyncio
import functools
import io
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.app import make_app
from hotline.carrier.callers import Caller
from hotline.carrier.carrier import DEFAULT_ACCOUNT_SID, CallRecord, VirtualCarrier
from hotline.config import load_config
from hotline.observability import logs
from hotline.settings import Settings
from speech.classifier import SpecialtyClassifier
from tests.support.paths import CONFIG_DIR
from tests.support.twilio_api import TwilioApi, twilio_api
from tests.support.waiting import eventually

SHANGHAI = ZoneInfo("Asia/Shanghai")
PUBLIC_URL = "https://hotline.example.gov"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ADMIN_TOKEN = "test-admin-token"
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI)  # the line is open
NIGHT = datetime(2026, 11, 30, 2, 0, tzinfo=SHANGHAI)  # the line is closed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SettableClock:
    """The clock the app is given; a test moves it where the scenario needs."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @classmethod
    def parse(cls, answer: bytes) -> RawResponse:
        head, _, body = answer.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (field.partition(":") for field in fields)
        }
        if headers.get("transfer-encoding") == "chunked":
            body = _unchunked(body)
        return cls(int(status_line.split()[1]), headers, body)


def _unchunked(body: bytes) -> bytes:
    whole = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        whole, body = whole + body[:size], body[size + 2 :]
    return whole


@dataclass
class Line:
    carrier: VirtualCarrier
    session: aiohttp.ClientSession
    base_url: str
    clock: SettableClock
    log: io.StringIO
    app: web.Application
    # The REST API stand-in this line's app talks to (None when the test gave its own).
    twilio_api: TwilioApi | None = None

    async def call(self, caller: Caller, **kw: Any) -> CallRecord:
        return await self.carrier.place_call(caller, **kw)

    async def until_waiting(self, queue: str, count: int = 1) -> None:
        """Until at least `count` callers hold in `queue` at the carrier."""
        await eventually(
            lambda: self.carrier.queue_size(queue) >= count, f"{count} caller(s) in {queue}"
        )

    async def api(
        self,
        path: str,
        token: str | None = ADMIN_TOKEN,
        *,
        method: str = "GET",
        json: Any = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(
            method, self.base_url + path, headers=headers, json=json
        ) as response:
            body = await response.json(content_type=None)
            return response.status, body

    async def raw(
        self,
        method: str,
        target: str | bytes,
        headers: Sequence[tuple[str, str | bytes]] = (),
        body: bytes = b"",
    ) -> RawResponse:
        """One request written byte for byte on a connection of its own: header values a
        client library would refuse or re-encode (bytes that are no UTF-8, no ASCII) reach
        the server exactly as given."""
        url = yarl.URL(self.base_url)
        head = [
            method.encode() + b" " + (target if isinstance(target, bytes) else target.encode()),
            b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
            b"Content-Length: %d\r\n" % len(body),
        ]
        for name, value in headers:
            head.append(
                name.encode()
                + b": "
                + (value if isinstance(value, bytes) else value.encode())
                + b"\r\n"
            )
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(b"".join(head) + b"\r\n" + body)
            await writer.drain()
            answer = await reader.read()
        finally:
            writer.close()
        return RawResponse.parse(answer)

    async def ticket(self, call_sid: str) -> dict[str, Any]:
        """The call's ticket, as the API shows it. A write that ran out of its time budget
        (a busy machine) waits in the spool for a moment: the ticket shows up when replayed."""

        async def listed() -> Any:
            status, found = await self.api(f"/api/tickets?call_sid={call_sid}")
            assert status == 200, found
            return found if found["total"] == 1 else None

        found = await eventually(listed, f"the ticket of {call_sid}")
        status, ticket = await self.api(f"/api/tickets/{found['tickets'][0]['number']}")
        assert status == 200
        result: dict[str, Any] = ticket
        return result


@functools.cache
def trained(digest: str, config_dir: Path) -> SpecialtyClassifier:
    """Training takes half a second; the tests share one classifier per config."""
    return SpecialtyClassifier.train(load_config(config_dir).examples)


@asynccontextmanager
async def running_line(
    database_url: str,
    *,
    config_dir: Path = CONFIG_DIR,
    now: datetime = NOON,
    queue_max_size: int | dict[str, int] = 100,
    sharing: Line | None = None,
    prepare: Callable[[web.Application], None] | None = None,
    **settings: Any,
) -> AsyncIterator[Line]:
    """A server process on `database_url`. With `sharing`, a second process of the same
    line: the same carrier (its calls and queues) and REST stand-in; a call reaches it
    when placed `via=line.base_url`. `prepare`: given the app before it starts (to add a
    route a test needs)."""
    log = io.StringIO()
    previous = structlog.get_config()  # a line inside another's test must not steal its log
    logs.configure("debug", stream=log)
    clock = SettableClock(now)
    # Scenarios place many calls from one number and poll the API under a clock that
    # stands still: no rate limits unless a test asks for them.
    settings.setdefault("calls_per_caller_per_min", 0)
    settings.setdefault("api_requests_per_token_per_min", 0)
    # Each line its own spool file (a spool is one process's), gone with the line.
    spool_dir = tempfile.TemporaryDirectory(prefix="hotline-spool-")
    settings.setdefault("spool_path", Path(spool_dir.name) / "spool.db")
    account = settings.setdefault("twilio_account_sid", DEFAULT_ACCOUNT_SID)
    try:
        async with AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            if sharing is not None:
                carrier, api = sharing.carrier, sharing.twilio_api
            else:
                # The app's address is known once it listens: the carrier learns it then.
                carrier = VirtualCarrier(
                    "http://127.0.0.1",
                    AUTH_TOKEN,
                    session,
                    account_sid=account,
                    public_url=PUBLIC_URL,
                    queue_max_size=queue_max_size,
                )
                api = None
                if "twilio_api_base" not in settings:
                    api = await stack.enter_async_context(twilio_api(account, AUTH_TOKEN, carrier))
            if api is not None:
                settings.setdefault("twilio_api_base", api.base_url)
            app_settings = Settings(
                config_dir=config_dir,
                database_url=database_url,
                twilio_auth_token=AUTH_TOKEN,
                public_url=PUBLIC_URL,
                admin_token=ADMIN_TOKEN,
                config_poll_s=0.2,
                **settings,
            )
            loaded = load_config(config_dir)
            classifier = trained(loaded.digest, config_dir)
            app = make_app(app_settings, loaded, clock=clock, classifier=classifier)
            if prepare is not None:
                prepare(app)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            stack.push_async_callback(server.close)
            base = str(server.make_url("")).rstrip("/")
            if sharing is None:
                carrier.base_url = base
            yield Line(carrier, session, base, clock, log, app, api)
    finally:
        spool_dir.cleanup()
        structlog.configure(**previous)


def heard(record: CallRecord) -> str:
    """All the caller heard, in one string."""
    return " ".join(record.said)


def enqueued(record: CallRecord) -> list[tuple[str, str]]:
    """Each queue the caller joined, and how the stay ended."""
    return [(q.queue, q.result) for q in record.queue_results]
