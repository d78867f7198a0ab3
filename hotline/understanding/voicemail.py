"""A voicemail left with no desk chosen (after hours, say) is listened to after the call.

When its words point clearly at one desk, the ticket gets that desk, so the callback puts
the enterprise through to it. The caller never waits for this: it runs after the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog

from hotline.config.live import LiveConfig
from hotline.store.durable import TicketWrites, operation_key
from hotline.store.tickets import CallRef
from hotline.understanding.understander import Understander
from ivr.events import Recording
from ivr.flow import voicemail_understood

log = structlog.get_logger("hotline.voicemail")


class VoicemailReader:
    def __init__(
        self,
        understander: Understander,
        tickets: TicketWrites,
        config: LiveConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self._understander = understander
        self._tickets = tickets
        self._config = config
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def read_later(self, call: CallRef, recording: Recording, lang: str) -> None:
        if not self._understander.available:
            return
        task = asyncio.create_task(self._read(call, recording, lang))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait for the voicemails being read (tests; a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _read(self, call: CallRef, recording: Recording, lang: str) -> None:
        loaded = self._config.current
        try:
            understood = await self._understander.understand(recording, lang, loaded, call.call_sid)
            change = voicemail_understood(loaded.plan, understood)
            # Through the spool like a webhook's write: a database outage loses nothing.
            key = operation_key(call.call_sid, f"voicemail-read:{recording.sid}")
            await self._tickets.record(call, [change], self._clock(), key=key)
        except Exception:
            log.exception("voicemail_reading_failed", call_sid=call.call_sid)
