"""The shared state: the in-process implementation, and Redis (real, at 127.0.0.1:6379)
with its fallback while Redis is away."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from structlog.testing import capture_logs

from hotline.store.shared import ChangeSignal, LocalState, RedisState, Window, open_shared
from tests.support.line import NOON
from tests.support.redis_proxy import redis_proxy, unique_prefix
from tests.support.waiting import eventually

MINUTE = Window.of(NOON, 60)
NEXT_MINUTE = Window.of(NOON + timedelta(seconds=60), 60)


def test_windows_are_whole_minutes_of_the_clock() -> None:
    start = NOON.replace(second=0)
    assert Window.of(start, 60) == Window.of(start + timedelta(seconds=59), 60)
    assert Window.of(start + timedelta(seconds=60), 60).index == Window.of(start, 60).index + 1
    assert (
        Window.of(start + timedelta(seconds=45), 60).remaining_s(start + timedelta(seconds=45))
        == 15
    )


async def test_local_counts_new_calls_once_each() -> None:
    state = LocalState()
    assert [await state.call_rank("n1", f"CA{i}", MINUTE) for i in range(3)] == [1, 2, 3]
    assert await state.call_rank("n1", "CA1", MINUTE) == 2  # a retried webhook: same rank
    assert await state.call_rank("n2", "CA9", MINUTE) == 1  # another number, its own count
    assert await state.call_rank("n1", "CA3", NEXT_MINUTE) == 1  # a new minute starts over
    # A retry that crosses into the next minute keeps the call's first answer.
    assert await state.call_rank("n1", "CA2", NEXT_MINUTE) == 3
    assert state.health == "off" and await state.check() == "off"


async def test_local_counts_requests_per_bucket_and_minute() -> None:
    state = LocalState()
    assert [await state.count("api:a", MINUTE) for _ in range(3)] == [1, 2, 3]
    assert await state.count("api:b", MINUTE) == 1
    assert await state.count("api:a", NEXT_MINUTE) == 1
    later = Window.of(NOON + timedelta(minutes=5), 60)
    await state.count("api:c", later)
    assert set(state._counts) == {"api:c"}  # past minutes are forgotten


async def test_local_announce_wakes_every_waiting_stream() -> None:
    state = LocalState()
    tokens = [state.changes.token() for _ in range(3)]
    waiting = [asyncio.create_task(state.changes.wait(t, 5)) for t in tokens]
    await asyncio.sleep(0)
    await state.announce()
    assert await asyncio.gather(*waiting) == [True, True, True]
    assert await state.changes.wait(state.changes.token(), 0.05) is False


async def test_a_change_while_reading_is_not_missed() -> None:
    signal = ChangeSignal()
    token = signal.token()  # taken before the stream reads the line
    signal.fire()  # a change lands while it reads
    assert await signal.wait(token, 0.01) is True


async def test_redis_counts_across_processes(redis_url: str, prefix: str) -> None:
    first = await open_shared(redis_url, prefix=prefix, timeout_s=0.3, retry_s=0.2)
    second = await open_shared(redis_url, prefix=prefix, timeout_s=0.3, retry_s=0.2)
    try:
        assert first.health == second.health == "ok"
        assert await first.call_rank("n1", "CA1", MINUTE) == 1
        assert await second.call_rank("n1", "CA2", MINUTE) == 2
        assert await second.call_rank("n1", "CA1", MINUTE) == 1  # the retry on another process
        assert await first.call_rank("n1", "CA3", MINUTE) == 3
        assert await first.count("api:x", MINUTE) == 1
        assert await second.count("api:x", MINUTE) == 2
        assert await second.count("api:x", NEXT_MINUTE) == 1
    finally:
        await first.close()
        await second.close()


async def test_redis_announce_reaches_the_other_process(redis_url: str, prefix: str) -> None:
    first = await open_shared(redis_url, prefix=prefix, timeout_s=0.3, retry_s=0.2)
    second = await open_shared(redis_url, prefix=prefix, timeout_s=0.3, retry_s=0.2)
    elsewhere = await open_shared(redis_url, prefix=unique_prefix(), timeout_s=0.3, retry_s=0.2)
    try:
        assert isinstance(second, RedisState) and isinstance(elsewhere, RedisState)
        await eventually(
            lambda: second._subscribed and elsewhere._subscribed, "both lines subscribed"
        )
        token, other = second.changes.token(), elsewhere.changes.token()
        await first.announce()
        assert await second.changes.wait(token, 2) is True
        assert await elsewhere.changes.wait(other, 0.3) is False  # another line's prefix
    finally:
        for state in (first, second, elsewhere):
            await state.close()


async def test_a_burst_of_announcements_is_published_once(redis_url: str, prefix: str) -> None:
    """Every webhook announces; Redis hears one notice per burst, not one per webhook."""
    listener = Redis.from_url(redis_url)
    pubsub = listener.pubsub()
    await pubsub.subscribe(f"{prefix}live-changed")
    state = await open_shared(redis_url, prefix=prefix, timeout_s=0.3, retry_s=0.2)
    try:
        for _ in range(50):
            await state.announce()
        heard = await _messages(pubsub, 0.5)
        await state.announce()  # a later change is announced again
        heard_later = await _messages(pubsub, 0.5)
    finally:
        await state.close()
        await pubsub.aclose()
        await listener.aclose()
    assert (heard, heard_later) == (1, 1)


async def _messages(pubsub: PubSub, seconds: float) -> int:
    count = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        count += message is not None
    return count


async def test_unreachable_at_start_answers_locally_at_once() -> None:
    with capture_logs() as logs:
        state = await open_shared("redis://127.0.0.1:1/0", prefix="x:", timeout_s=0.3, retry_s=5)
        try:
            assert state.health == "unreachable"
            started = time.perf_counter()
            ranks = [await state.call_rank("n1", f"CA{i}", MINUTE) for i in range(50)]
            assert ranks == list(range(1, 51))
            assert time.perf_counter() - started < 0.5  # no Redis round trips while away
            token = state.changes.token()
            await state.announce()
            assert await state.changes.wait(token, 0.1) is True  # streams here still woken
        finally:
            await state.close()
    assert [e["event"] for e in logs].count("redis_unreachable") == 1


async def test_outage_falls_back_then_recovers(redis_url: str, prefix: str) -> None:
    async with redis_proxy(redis_url) as proxy:
        with capture_logs() as logs:
            state = await open_shared(proxy.url, prefix=prefix, timeout_s=0.3, retry_s=0.2)
            assert isinstance(state, RedisState)
            try:
                assert await state.count("api:x", MINUTE) == 1
                await proxy.cut()
                for expected in (1, 2, 3):  # counted here alone, from zero
                    assert await state.count("api:x", MINUTE) == expected
                assert state.health == "unreachable"
                assert await state.check() == "unreachable"
                await proxy.restore()

                def back() -> bool:  # a function: not narrowed to "unreachable" by the above
                    return state.health == "ok" and state._subscribed

                await eventually(back, "Redis back, subscribed")
                assert await state.count("api:x", MINUTE) == 2  # Redis's count again
            finally:
                await state.close()
    events = [e["event"] for e in logs]
    assert events.count("redis_unreachable") == 1 and events.count("redis_back") == 1
