"""Waiting for the system under test: one bounded poll, so that a state that never comes is a
failure that says what was awaited, in seconds, not a hang until the suite's time limit."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

TIMEOUT_S = 5.0
EVERY_S = 0.02


@overload
async def eventually(
    condition: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout_s: float = TIMEOUT_S,
    every_s: float = EVERY_S,
) -> T: ...


@overload
async def eventually(
    condition: Callable[[], T | None],
    what: str,
    *,
    timeout_s: float = TIMEOUT_S,
    every_s: float = EVERY_S,
) -> T: ...


async def eventually(
    condition: Callable[[], object],
    what: str,
    *,
    timeout_s: float = TIMEOUT_S,
    every_s: float = EVERY_S,
) -> object:
    """Calls `condition` (a function or a coroutine function) every `every_s` seconds until it
    returns something true, and returns that; an AssertionError naming `what` and the last
    value seen after `timeout_s` seconds. An exception of the condition ends the wait."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = condition()
        if inspect.isawaitable(seen):
            seen = await seen
        if seen:
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s (last seen: {seen!r})")
        await asyncio.sleep(every_s)
