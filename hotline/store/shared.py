"""State that several server processes share: rate-limit counters and the live view's
change notices. In Redis when `redis_url` is set; in this process otherwise.

Redis is never on the path of a call's routing: every Redis operation has a short socket
timeout, and while Redis cannot be reached each operation is answered by the in-process
implementation instead (counters become per-process, notices stay in the process) until
the listener reconnects. One warning per outage, not per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from hotline.auth.tokens import token_digest

log = structlog.get_logger("hotline.shared")

Health = Literal["ok", "unreachable", "off"]
# Anything that means "the server did not answer": the client's own errors, refused or
# reset connections, and timeouts.
UNREACHABLE = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class Window:
    """A fixed counting window: the `index`th stretch of `length_s` seconds since the epoch."""

    index: int
    length_s: int

    @classmethod
    def of(cls, now: datetime, length_s: int) -> Window:
        return cls(int(now.timestamp()) // length_s, length_s)

    def remaining_s(self, now: datetime) -> int:
        """Whole seconds until the next window starts (at least 1)."""
        return max(1, (self.index + 1) * self.length_s - int(now.timestamp()))


def digest(text: str) -> str:
    """A short stable name for a phone number or a token, so neither is stored in Redis."""
    return token_digest(text)[:20]


class ChangeSignal:
    """Wakes every live stream of this process at once when the line changed.

    A stream takes a `token()` before it reads the line and waits on that token: a change
    that happens while it reads sets the token it already holds, so nothing is missed.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def token(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, token: asyncio.Event, timeout_s: float) -> bool:
        """True when woken by a change, False when `timeout_s` passed first."""
        try:
            await asyncio.wait_for(token.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class SharedState(Protocol):
    changes: ChangeSignal

    @property
    def health(self) -> Health: ...

    async def check(self) -> Health:
        """The health, asking the server now (for /healthz)."""
        ...

    async def call_rank(self, caller: str, call_sid: str, window: Window) -> int:
        """How many new calls `caller` has made in `window`, this one included. A call
        already counted (a retried webhook of the same call) keeps its first rank."""
        ...

    async def count(self, bucket: str, window: Window) -> int:
        """One more request in `bucket` during `window`; the total so far."""
        ...

    async def announce(self) -> None:
        """Something the live view shows has changed: wake the live streams of every process."""
        ...

    async def close(self) -> None: ...


class LocalState:
    """Everything in this process: the single-process default, and the stand-in while
    Redis is unreachable. Old windows are forgotten as time moves on."""

    def __init__(self) -> None:
        self.changes = ChangeSignal()
        self._counts: dict[str, tuple[int, int]] = {}  # bucket -> (window index, count)
        self._ranks: dict[str, tuple[int, int]] = {}  # call id -> (window index, rank)
        self._swept = -1

    @property
    def health(self) -> Health:
        return "off"

    async def check(self) -> Health:
        return "off"

    async def call_rank(self, caller: str, call_sid: str, window: Window) -> int:
        self._sweep(window)
        known = self._ranks.get(call_sid)
        if known is not None:
            return known[1]
        rank = self._bump(f"calls:{caller}", window)
        self._ranks[call_sid] = (window.index, rank)
        return rank

    async def count(self, bucket: str, window: Window) -> int:
        self._sweep(window)
        return self._bump(bucket, window)

    async def announce(self) -> None:
        self.changes.fire()

    async def close(self) -> None:
        pass

    def _bump(self, bucket: str, window: Window) -> int:
        index, count = self._counts.get(bucket, (window.index, 0))
        count = count + 1 if index == window.index else 1
        self._counts[bucket] = (window.index, count)
        return count

    def _sweep(self, window: Window) -> None:
        """Once per window: drop counters of past windows; keep a call's rank one window
        longer, as Twilio may retry a webhook across the boundary."""
        if window.index == self._swept:
            return
        self._swept = window.index
        self._counts = {k: v for k, v in self._counts.items() if v[0] >= window.index}
        self._ranks = {k: v for k, v in self._ranks.items() if v[0] >= window.index - 1}


# A call is counted once: its first rank is remembered under its call id.
_RANK_CALL = """
local seen = redis.call('GET', KEYS[2])
if seen then return tonumber(seen) end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
redis.call('SET', KEYS[2], n, 'EX', ARGV[2])
return n
"""
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisState:
    """Counters and change notices in Redis (fixed windows: INCR with EXPIRE; PUBLISH and
    one subscriber per process), with a `LocalState` answering while Redis is away."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hotline:",
        timeout_s: float = 0.3,
        retry_s: float = 2.0,
        coalesce_s: float = 0.1,
    ) -> None:
        self._redis = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # Once more on a fresh connection when a pooled one died in an outage; never
            # on a timeout, which would double the wait a dead Redis costs.
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self._prefix = prefix
        self._retry_s = retry_s
        self._local = LocalState()
        self.changes = self._local.changes
        self._channel = f"{prefix}live-changed"
        self._rank_call = self._redis.register_script(_RANK_CALL)
        self._count = self._redis.register_script(_COUNT)
        self._down = False
        self._subscribed = False
        self._listener: asyncio.Task[None] | None = None
        self._coalesce_s = coalesce_s
        self._announcing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Probe once (an unreachable Redis at start is logged, not fatal) and subscribe."""
        await self.check()
        self._listener = asyncio.create_task(self._listen())

    @property
    def health(self) -> Health:
        return "unreachable" if self._down else "ok"

    async def check(self) -> Health:
        try:
            await self._redis.ping()
        except UNREACHABLE as exc:
            self._went_down(exc)
        else:
            self._came_back()
        return self.health

    async def call_rank(self, caller: str, call_sid: str, window: Window) -> int:
        if not self._down:
            keys = [
                f"{self._prefix}calls:{caller}:{window.index}",
                f"{self._prefix}call:{call_sid}",
            ]
            try:
                return int(
                    await self._rank_call(
                        keys=keys, args=[window.length_s * 2, window.length_s * 2]
                    )
                )
            except UNREACHABLE as exc:
                self._went_down(exc)
        return await self._local.call_rank(caller, call_sid, window)

    async def count(self, bucket: str, window: Window) -> int:
        if not self._down:
            key = f"{self._prefix}{bucket}:{window.index}"
            try:
                return int(await self._count(keys=[key], args=[window.length_s * 2]))
            except UNREACHABLE as exc:
                self._went_down(exc)
        return await self._local.count(bucket, window)

    async def announce(self) -> None:
        """Every webhook announces: notices within `coalesce_s` of the first go to Redis as
        one, published off the request path."""
        if not self._subscribed:
            # This process's own streams would not hear it back from Redis.
            self.changes.fire()
        if self._down or self._announcing is not None:
            return
        self._announcing = asyncio.create_task(self._publish_soon())

    async def _publish_soon(self) -> None:
        try:
            await asyncio.sleep(self._coalesce_s)
            await self._redis.publish(self._channel, b"changed")
        except UNREACHABLE as exc:
            self._went_down(exc)
            self.changes.fire()
        finally:
            self._announcing = None

    async def close(self) -> None:
        if self._announcing is not None:
            self._announcing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._announcing
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()

    async def _listen(self) -> None:
        """Wake this process's streams on every notice; reconnect every `retry_s` while
        Redis is away. A successful subscription is what ends an outage."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed = True
                self._came_back()
                self.changes.fire()  # whatever changed while away
                quiet = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self.changes.fire()
                        quiet = 0
                        continue
                    quiet += 1
                    if quiet >= 5:  # a silent channel: make sure the connection still lives
                        await pubsub.ping()
                        quiet = 0
            except UNREACHABLE as exc:
                self._went_down(exc)
            finally:
                self._subscribed = False
                with contextlib.suppress(*UNREACHABLE):
                    await pubsub.aclose()
            await asyncio.sleep(self._retry_s)

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "redis_unreachable",
                error=f"{type(exc).__name__}: {exc}",
                effect="rate limits counted per process; live view polls the database",
            )

    def _came_back(self) -> None:
        if self._down:
            self._down = False
            log.info("redis_back")


async def open_shared(
    url: str, *, prefix: str, timeout_s: float, retry_s: float
) -> LocalState | RedisState:
    """The shared state for these settings: Redis when a URL is given, else this process."""
    if not url:
        return LocalState()
    state = RedisState(url, prefix=prefix, timeout_s=timeout_s, retry_s=retry_s)
    await state.start()
    return state
