"""One read of the line for every live stream of this process that wants it at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Snapshot = dict[str, Any]


class SharedReads:
    """A change wakes every live stream at once, and each used to read the whole line for
    itself: ten supervisors with the page open made ten reads of the database per change,
    in the middle of the calls that made the change.

    A stream asks with the change token it took before reading (`ChangeSignal.token()`).
    A read started under the same token has seen every change that token stands for, so
    while it is running, or for `fresh_s` after it started, the stream gets that read.
    """

    def __init__(self, fresh_s: float) -> None:
        self._fresh_s = fresh_s
        self._task: asyncio.Task[Snapshot] | None = None
        self._token: object = None
        self._started = 0.0

    async def snapshot(self, token: object, read: Callable[[], Awaitable[Snapshot]]) -> Snapshot:
        now = asyncio.get_running_loop().time()
        if self._task is None or not self._reusable(self._task, token, now):
            self._task = asyncio.ensure_future(read())
            self._token, self._started = token, now
        # A stream that goes away while waiting must not cancel the others' read.
        return await asyncio.shield(self._task)

    def _reusable(self, task: asyncio.Task[Snapshot], token: object, now: float) -> bool:
        if self._token is not token:
            return False  # a change since that read began
        if not task.done():
            return True
        failed = task.cancelled() or task.exception() is not None
        return not failed and now - self._started <= self._fresh_s
