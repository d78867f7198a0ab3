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

from hotline.live_config import LiveConfig
from hotline.store.tickets import CallRef, TicketStore
from hotline.understanding import Understander
from ivr.actions import TicketChange
from ivr.events import Recording
from routing.tiers import AppealType

log = structlog.get_logger("hotline.voicemail")


class VoicemailReader:
    def __init__(
        self,
        understander: Understander,
        store: TicketStore,
        config: LiveConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self._understander = understander
        self._store = store
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
        plan = loaded.plan
        try:
            understood = await self._understander.understand(recording, lang, loaded, call.call_sid)
            top = understood.candidates[0] if understood.candidates else None
            clear = top is not None and top[1] >= plan.dialogue.understanding.confirm_at
            desk = plan.specialties.get(top[0]) if clear and top is not None else None
            change = TicketChange(
                note=f"voicemail understood: {desk.id}" if desk else "voicemail not clear",
                understanding=understood,
            )
            if desk is not None:
                appeal = understood.appeal
                change = TicketChange(
                    note=change.note,
                    understanding=understood,
                    specialty=desk.id,
                    department=desk.department,
                    appeal=appeal if appeal is not AppealType.UNKNOWN else None,
                    tier=plan.tiers.tier_for(appeal, desk.tier_overrides),
                )
            await self._store.apply(call, [change], self._clock())
        except Exception:
            log.exception("voicemail_reading_failed", call_sid=call.call_sid)
