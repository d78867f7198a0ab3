"""Several processes, one line: two running apps share a database and a Redis (a key prefix
of their own per test). Rate limits count across both, the live view of one hears the calls
of the other, and a Redis outage degrades the service without stopping a call."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from hotline.carrier.callers import QueueChoice, QueuePlan, ScriptedCaller
from hotline.carrier.carrier import CallRecord
from hotline.config import load_config
from tests.support.line import ADMIN_TOKEN, Line, running_line
from tests.support.paths import CONFIG_DIR
from tests.support.redis_proxy import redis_or_skip, redis_proxy, unique_prefix
from tests.support.waiting import eventually

TO = "+8610123450000"
# What a refused caller hears, as the shipped config says it.
REFUSAL = load_config(CONFIG_DIR).plan.prompts.rate_limited


def refused(call: CallRecord) -> bool:
    said = " ".join(call.said)
    return REFUSAL["zh"] in said and REFUSAL["en"] in said and call.ended_by == "hangup-verb"


async def to_general_desk(line: Line, number: str) -> CallRecord:
    return await line.call(ScriptedCaller(keys=["0"]), from_number=number)


def voice_params(call_sid: str, number: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "From": number,
        "To": TO,
        "AccountSid": "AC" + "0" * 32,
        "CallStatus": "ringing",
    }


async def test_rate_limits_are_counted_across_processes(
    db_url: str, redis_url: str, prefix: str
) -> None:
    shared: dict[str, Any] = {
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "calls_per_caller_per_min": 2,
        "api_requests_per_token_per_min": 3,
    }
    async with running_line(db_url, **shared) as a, running_line(db_url, **shared) as b:
        number = "+8613900001111"
        first = await to_general_desk(a, number)
        # Twilio retries the first call's webhook, and the retry lands on the other process.
        retry = await b.carrier.post("/twilio/voice", voice_params(first.call_sid, number))
        assert retry.status == 200 and REFUSAL["en"] not in retry.body
        second = await to_general_desk(b, number)
        third = await to_general_desk(a, number)
        assert not refused(first) and not refused(second) and first.queue_results
        assert refused(third)
        again = await b.carrier.post("/twilio/voice", voice_params(third.call_sid, number))
        assert again.status == 200 and REFUSAL["en"] in again.body  # refused, consistently
        assert not refused(await to_general_desk(b, "+8613900002222"))  # another number
        assert not refused(await to_general_desk(a, "+266696687"))  # withheld: never counted

        limited = [e for e in _events(b) if e["event"] == "caller_rate_limited"]
        assert {e["call_sid"] for e in limited} == {third.call_sid}
        assert limited[0]["caller"] == "+86139****1111"
        assert number not in b.log.getvalue() + a.log.getvalue()

        assert [(await line.api("/healthz", token=None))[0] for line in (a, b)] == [200, 200]
        assert [(await line.api("/api/tickets"))[0] for line in (a, b, a)] == [200] * 3
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with b.session.get(b.base_url + "/api/tickets", headers=headers) as response:
            body = await response.json()
            assert response.status == 429 and body["error"] == "rate-limited"
            assert response.headers["Retry-After"] == "60"  # the clock stands at 12:00:00
        b.clock.now = a.clock.now = a.clock.now.replace(minute=1)
        assert (await b.api("/api/tickets"))[0] == 200  # a new minute


async def test_live_view_of_one_process_hears_a_call_on_another(
    db_url: str, redis_url: str, prefix: str
) -> None:
    # A polls its database only every 30 s: what it shows sooner came through Redis.
    async with (
        running_line(db_url, redis_url=redis_url, redis_prefix=prefix, live_poll_s=30) as a,
        running_line(db_url, redis_url=redis_url, redis_prefix=prefix) as b,
        _live_events(a) as next_snapshot,
    ):
        assert _waiting(await next_snapshot(5)) == 0
        gate = asyncio.Event()
        caller = ScriptedCaller(
            keys=["2", "2"], queue=QueuePlan(then=QueueChoice.HANGUP), queue_gate=gate
        )
        call = asyncio.create_task(b.call(caller))
        await _until_waiting(next_snapshot, 1, within_s=5)
        gate.set()
        await call
        await _until_waiting(next_snapshot, 0, within_s=5)


async def test_without_the_shared_channel_only_the_poll_would_tell(tmp_path: Path) -> None:
    """The control of the test above: two lines on different prefixes share the database
    but no channel, so A's stream, polling every 30 s, does not hear B's caller soon."""
    url = await redis_or_skip()
    database = f"sqlite+aiosqlite:///{tmp_path / 'two.db'}"
    async with (
        running_line(database, redis_url=url, redis_prefix=unique_prefix(), live_poll_s=30) as a,
        running_line(database, redis_url=url, redis_prefix=unique_prefix()) as b,
        _live_events(a) as next_snapshot,
    ):
        assert _waiting(await next_snapshot(5)) == 0
        gate = asyncio.Event()
        caller = ScriptedCaller(
            keys=["2", "2"], queue=QueuePlan(then=QueueChoice.HANGUP), queue_gate=gate
        )
        call = asyncio.create_task(b.call(caller))
        with pytest.raises(TimeoutError):
            await _until_waiting(next_snapshot, 1, within_s=1.5)
        gate.set()
        await call


async def test_redis_outage_degrades_and_recovers(db_url: str, redis_url: str, prefix: str) -> None:
    async with redis_proxy(redis_url) as proxy:
        shared: dict[str, Any] = {
            "redis_url": proxy.url,
            "redis_prefix": prefix,
            "redis_retry_s": 0.2,
            "calls_per_caller_per_min": 2,
        }
        async with running_line(db_url, **shared) as a, running_line(db_url, **shared) as b:
            assert await _health(a) == ("ok", "ok")
            await proxy.cut()

            # Calls are still routed and written.
            number = "+8613900003333"
            routed = await a.call(ScriptedCaller(keys=["2", "3"]), from_number=number)
            ticket = await a.ticket(routed.call_sid)
            assert ticket["specialty"] == "tax-filing" and ticket["status"] == "answered"
            assert await _health(a) == ("degraded", "unreachable")
            assert await _health(b) == ("degraded", "unreachable")

            # Each process counts alone: a third call across both gets through; A's third not.
            assert not refused(await to_general_desk(b, number))
            assert not refused(await to_general_desk(a, number))
            assert refused(await to_general_desk(a, number))

            await proxy.restore()
            for line in (a, b):
                await eventually(functools.partial(_healthy, line), "Redis's health back")
            other = "+8613900004444"
            assert not refused(await to_general_desk(a, other))
            assert not refused(await to_general_desk(b, other))
            assert refused(await to_general_desk(a, other))  # counted across both again

            events = [e["event"] for e in _events(b)]
            # One warning per process and outage, whatever the number of requests meanwhile.
            assert events.count("redis_unreachable") == 2
            assert events.count("redis_back") == 2


def _events(line: Line) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in line.log.getvalue().splitlines() if raw.startswith("{")]


async def _health(line: Line) -> tuple[str, str]:
    status, body = await line.api("/healthz", token=None)
    assert status == 200
    return body["status"], body["redis"]


async def _healthy(line: Line) -> bool:
    return await _health(line) == ("ok", "ok")


Snapshots = Callable[[float], Awaitable[dict[str, Any]]]


@asynccontextmanager
async def _live_events(line: Line) -> AsyncIterator[Snapshots]:
    """The line's /api/live/events stream; `next_snapshot(timeout_s)` reads one event."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with line.session.get(line.base_url + "/api/live/events", headers=headers) as response:
        assert response.status == 200

        async def next_snapshot(timeout_s: float) -> dict[str, Any]:
            async with asyncio.timeout(timeout_s):
                while True:
                    raw = (await response.content.readline()).decode()
                    if raw.startswith("data: "):
                        snapshot: dict[str, Any] = json.loads(raw[len("data: ") :])
                        return snapshot

        yield next_snapshot


def _waiting(snapshot: dict[str, Any], desk: str = "tax-invoice") -> int:
    return int(next(d["waiting"] for d in snapshot["desks"] if d["id"] == desk))


async def _until_waiting(next_snapshot: Snapshots, count: int, *, within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while _waiting(await next_snapshot(within_s)) != count:
            pass
