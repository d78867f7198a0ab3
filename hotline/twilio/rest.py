"""Twilio's REST API, through the twilio library: placing a call (`calls.create`) and taking
one caller out of a queue (the Queue Members resource's update)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"
# A caller is taken out of a queue while an agent's webhook waits for the answer.
TAKE_WITHIN_S = 5.0
# Twilio's answer for a member that is not (or no longer) in the queue, or a queue unknown.
_NOT_QUEUED = frozenset({400, 404})


@dataclass(frozen=True)
class CallRequest:
    to: str
    caller_id: str  # the hotline's own number, shown to the enterprise
    url: str  # answered: TwiML from here
    status_callback: str  # ended: the result goes here
    ring_timeout_s: int


class DialError(Exception):
    """The carrier did not take the call (bad number, account problem, API unreachable)."""


class Dialer(Protocol):
    async def place(self, call: CallRequest) -> str:
        """The new call's CallSid; raises DialError."""
        ...

    async def close(self) -> None: ...


class TakeError(Exception):
    """The caller was not taken out of the queue. `gone`: Twilio says the call is not in
    that queue (it hung up or left); otherwise the API failed and the caller still waits."""

    def __init__(self, message: str, *, gone: bool) -> None:
        super().__init__(message)
        self.gone = gone


class QueueMembers(Protocol):
    async def take(self, queue_sid: str, call_sid: str, url: str) -> None:
        """Take this caller out of its queue into the TwiML at `url` (absolute); raises
        TakeError."""
        ...


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The library's own HTTP client, sent to another base URL when one is configured.

    A staging stand-in (or a test's) answers like the Calls API; everything else, from the
    request the library builds to the response it parses, stays the library's.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        super().__init__(timeout=timeout_s)
        self._base = base_url.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self._base and url.startswith(TWILIO_API):
            url = self._base + url[len(TWILIO_API) :]
        response: Response = await super().request(method, url, *args, **kwargs)
        return response


class TwilioRest:
    """The service's Twilio REST client: a Dialer and the Queue Members resource."""

    def __init__(
        self, account_sid: str, auth_token: str, *, api_base: str = "", timeout_s: float = 10
    ) -> None:
        self._http = _HttpClient(api_base, timeout_s)
        self._client = Client(account_sid, auth_token, http_client=self._http)

    async def place(self, call: CallRequest) -> str:
        try:
            created = await self._client.calls.create_async(
                to=call.to,
                from_=call.caller_id,
                url=call.url,
                method="POST",
                status_callback=call.status_callback,
                status_callback_method="POST",
                status_callback_event=["completed"],
                # Twilio holds the url request until it knows who answered.
                machine_detection="Enable",
                timeout=call.ring_timeout_s,
            )
        except TwilioRestException as exc:
            # Twilio's error code first: it is what its error pages are indexed by.
            raise DialError(f"Twilio error {exc.code}: {exc.msg}"[:300]) from exc
        except TwilioException as exc:
            raise DialError(str(exc)[:300]) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DialError(f"Twilio's API is unreachable: {exc}"[:300]) from exc
        if not created.sid:
            raise DialError("the Calls API answered without a call sid")
        return str(created.sid)

    async def take(self, queue_sid: str, call_sid: str, url: str) -> None:
        """Twilio dequeues the member: requests its <Enqueue> action URL at once (with
        QueueResult redirected) and runs the TwiML at `url` on that call. Only the first
        request for a member succeeds."""
        member = self._client.queues(queue_sid).members(call_sid)
        try:
            async with asyncio.timeout(TAKE_WITHIN_S):
                await member.update_async(url=url, method="POST")
        except TwilioRestException as exc:
            gone = exc.status in _NOT_QUEUED
            raise TakeError(f"Twilio error {exc.code}: {exc.msg}"[:300], gone=gone) from exc
        except TwilioException as exc:
            raise TakeError(str(exc)[:300], gone=False) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TakeError(f"Twilio's API is unreachable: {exc!r}"[:300], gone=False) from exc

    async def close(self) -> None:
        await self._http.close()
