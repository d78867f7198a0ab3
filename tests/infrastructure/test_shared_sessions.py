"""People's sessions across processes: two running apps on one database and one Redis (a key
prefix of their own per test) serve the same person, whichever of them a request reaches,
as a load balancer would send it; a lockout counted on both holds on both."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from hotline.auth.accounts import AccountRole
from tests.support.line import running_line
from tests.support.people import add_account, browser
from tests.support.redis_proxy import redis_proxy

WRONG = "not the password at all"


async def test_a_session_opened_on_one_process_is_served_by_the_other(
    db_url: str, redis_url: str, prefix: str
) -> None:
    shared: dict[str, Any] = {"redis_url": redis_url, "redis_prefix": prefix}
    async with running_line(db_url, **shared) as a, running_line(db_url, **shared) as b:
        await add_account(a, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
        async with browser(a, b) as person:
            done = await person.login("zhang")
            assert done.status == 303 and done.location == "/cases"
            person.base_url = b.base_url  # the balancer sends the next request to B
            home = await person.get("/cases")
            assert home.status == 200 and "zhang" in home.text

            client = Redis.from_url(redis_url)
            try:
                keys = [k async for k in client.scan_iter(match=f"{prefix}session_*")]
                cookie = person.cookie()
                assert cookie is not None and f"{prefix}session_{cookie}".encode() in keys
                assert await client.ttl(f"{prefix}session_{cookie}") > 1700  # the idle time
            finally:
                await client.aclose()

            person.base_url = a.base_url  # B's page's form, sent to A
            out = await person.post("/logout", {"csrf_token": home.token})
            assert out.status == 303 and out.location == "/login"
            person.base_url = b.base_url
            assert (await person.get("/cases")).status == 303


async def test_the_idle_time_is_the_apps_clock_not_redis_expiry(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Redis would keep the session 30 minutes of real time; the line's clock says 31
    have passed since the last request, and the session ends."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'two.db'}"
    shared: dict[str, Any] = {"redis_url": redis_url, "redis_prefix": prefix}
    async with running_line(database, **shared) as a, running_line(database, **shared) as b:
        await add_account(a, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
        async with browser(a, b) as person:
            await person.login("zhang")
            a.clock.now = b.clock.now = a.clock.now + timedelta(minutes=29)
            person.base_url = b.base_url
            assert (await person.get("/cases")).status == 200
            a.clock.now = b.clock.now = a.clock.now + timedelta(minutes=31)
            person.base_url = a.base_url
            page = await person.get("/cases")
            assert page.status == 303 and page.location.startswith("/login?next=")
        # The lines log to the last one's stream (one structlog per process).
        logged = a.log.getvalue() + b.log.getvalue()
        idle = [json.loads(x) for x in logged.splitlines() if "session_idle" in x]
        assert [e["username"] for e in idle] == ["zhang"]


async def test_without_redis_each_process_keeps_its_own_sessions(tmp_path: Path) -> None:
    """The control of the first test: a person logged in on A is a stranger to B."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'two.db'}"
    async with running_line(database) as a, running_line(database) as b:
        await add_account(a, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
        async with browser(a, b) as person:
            assert (await person.login("zhang")).status == 303
            assert (await person.get("/cases")).status == 200
            person.base_url = b.base_url
            assert (await person.get("/cases")).status == 303


async def test_failures_on_both_processes_lock_the_account_on_both(db_url: str) -> None:
    async with running_line(db_url) as a, running_line(db_url) as b:
        await add_account(a, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
        for line in (a, b, a, b, a):
            async with browser(line) as person:
                assert (await person.login("zhang", WRONG)).status == 200
        for line in (a, b):
            async with browser(line) as person:
                page = await person.login("zhang")  # the right password
                assert page.status == 200 and "用户名或密码错误" in page.text
        assert '"account_locked"' in a.log.getvalue() + b.log.getvalue()


async def test_with_its_redis_away_a_page_says_so_and_calls_go_on(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'away.db'}"
    async with (
        redis_proxy(redis_url) as proxy,
        running_line(database, redis_url=proxy.url, redis_prefix=prefix) as line,
    ):
        await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
        async with browser(line) as person:
            assert (await person.login("zhang")).status == 303
            await proxy.cut()
            page = await person.get("/cases")
            assert page.status == 503 and 'data-error="sessions-unavailable"' in page.text
            assert "登录服务暂时不可用" in page.text
            call = await line.carrier.post(
                "/twilio/voice",
                {
                    "CallSid": "CA" + "5" * 32,
                    "From": "+8613900005555",
                    "To": "+8610123450000",
                    "AccountSid": "AC" + "0" * 32,
                    "CallStatus": "ringing",
                },
            )
            assert call.status == 200 and "<Gather" in call.body
            await proxy.restore()
            assert (await person.get("/cases")).status == 200  # the session was kept
