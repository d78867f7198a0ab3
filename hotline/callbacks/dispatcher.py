"""The dispatcher: every few seconds, while the line is open, place the calls owed.

Any number of server processes run one each; the job store's claim hands each job to exactly
one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from casework.callbacks import may_dial
from hotline.config.live import LiveConfig
from hotline.observability.logs import mask_number
from hotline.store.durable import TicketWrites
from hotline.store.jobs import ClaimedCall
from hotline.twilio.rest import CallRequest, Dialer, DialError
from hotline.twilio.urls import placed_call, placed_call_status

log = structlog.get_logger("hotline.callbacks")


class Dispatcher:
    def __init__(
        self,
        tickets: TicketWrites,
        dialer: Dialer,
        config: LiveConfig,
        clock: Callable[[], datetime],
        *,
        public_url: str,
        caller_id: str,
        owner: str,
    ) -> None:
        self._tickets = tickets
        self._dialer = dialer
        self._config = config
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._caller_id = caller_id
        self._owner = owner

    async def tick(self) -> int:
        """Place what is owed now; how many calls were placed."""
        now = self._clock()
        loaded = self._config.current
        if not may_dial(loaded.plan.hours, now, loaded.callbacks):
            return 0
        claimed = await self._tickets.claim_calls(now, loaded.callbacks, self._owner)
        placed = 0
        for call in claimed:
            placed += await self._place(call)
        return placed

    async def run(self, every_s: float) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be down for a while: the jobs wait in it, try again later.
                log.exception("dispatch_failed")
            await asyncio.sleep(every_s)

    async def _place(self, call: ClaimedCall) -> int:
        policy = self._config.current.callbacks
        request = CallRequest(
            to=call.number,
            caller_id=self._caller_id,
            url=placed_call(self._public_url, call.job_id, call.lang),
            status_callback=placed_call_status(self._public_url, call.job_id),
            ring_timeout_s=policy.ring_timeout_s,
        )
        try:
            sid = await self._dialer.place(request)
        except DialError as exc:
            settled = await self._tickets.call_not_placed(
                call.job_id, str(exc), self._clock(), policy
            )
            log.warning(
                "outbound_not_placed",
                job=call.job_id,
                kind=call.kind.value,
                ticket=call.ticket,
                to=mask_number(call.number),
                error=str(exc),
                state=settled.state.value if settled else None,
            )
            return 0
        await self._tickets.call_placed(call.job_id, sid, self._clock())
        log.info(
            "outbound_placed",
            job=call.job_id,
            kind=call.kind.value,
            ticket=call.ticket,
            desk=call.desk,
            attempt=call.attempt,
            call_sid=sid,
            to=mask_number(call.number),
        )
        return 1
