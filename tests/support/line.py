"""A running hotline for scenario tests: the real app on loopback, a real database, the
virtual carrier as Twilio (with a stand-in of its REST API), and a clock the test sets."""

from __future__ import annotations

import functools
import io
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog
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

    async def ticket(self, call_sid: str) -> dict[str, Any]:
        status, found = await self.api(f"/api/tickets?call_sid={call_sid}")
        assert status == 200 and found["total"] == 1, found
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
    **settings: Any,
) -> AsyncIterator[Line]:
    """A server process on `database_url`. With `sharing`, a second process of the same
    line: the same carrier (its calls and queues) and REST stand-in; a call reaches it
    when placed `via=line.base_url`."""
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
