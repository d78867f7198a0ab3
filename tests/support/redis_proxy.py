"""Real Redis for tests, and a TCP proxy in front of it that a test can cut and restore to
play an outage (no mocks: the client sees refused and reset connections)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

REDIS_URL = os.environ.get("HOTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# CI sets this so that a Redis that is down fails the run instead of skipping tests.
REQUIRE_REDIS = os.environ.get("HOTLINE_REQUIRE_REDIS") == "1"


async def redis_or_skip() -> str:
    """The test Redis URL, or skip (fail under HOTLINE_REQUIRE_REDIS=1) when it is down."""
    client = Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        if REQUIRE_REDIS:
            pytest.fail(f"Redis is required but not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    finally:
        await client.aclose()
    return REDIS_URL


def unique_prefix() -> str:
    return f"hotline-test:{uuid.uuid4().hex[:12]}:"


async def drop_prefix(url: str, prefix: str) -> None:
    """Remove this test's keys (only those: other tests share the server)."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class RedisProxy:
    """Forwards 127.0.0.1:<port> to Redis; `cut()` refuses and resets every connection,
    `restore()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._serving: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._serving):
            task.cancel()
        if self._serving:
            await asyncio.wait(list(self._serving), timeout=2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(*self._target)
            await asyncio.gather(self._pump(reader, upstream), self._pump(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass  # cut, or one side hung up: both connections close below
        finally:
            self._serving.discard(task)
            for side in (writer, upstream):
                if side is not None:
                    side.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def redis_proxy(url: str) -> AsyncIterator[RedisProxy]:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    proxy = RedisProxy(host or "127.0.0.1", int(port or 6379))
    await proxy.restore()
    try:
        yield proxy
    finally:
        await proxy.cut()
