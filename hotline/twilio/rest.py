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
# Twilio's error codes that say the caller is not (or no longer) in that queue: not found
# (the member, or the queue), and the 400 of a member already taken. Any other refusal (a
# URL Twilio will not take, a wrong account) says nothing of the caller, who still waits.
_NOT_QUEUED = frozenset({20404, 21220})


# What a REST call may fail with: Twilio's refusal, or no answer at all.
_API_ERRORS = (TwilioException, aiohttp.ClientError, OSError, TimeoutError)


def _refusal(exc: Exception) -> str:
    """A failed REST call in one line; Twilio's error code first, since its error pages are
    indexed by it."""
    if isinstance(exc, TwilioRestException):
        return f"Twilio error {exc.code}: {exc.msg}"[:300]
    if isinstance(exc, TwilioException):
        return str(exc)[:300]
    return f"Twilio's API is unreachable: {exc!r}"[:300]


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
        except _API_ERRORS as exc:
            raise DialError(_refusal(exc)) from exc
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
        except _API_ERRORS as exc:
            gone = isinstance(exc, TwilioRestException) and exc.code in _NOT_QUEUED
            raise TakeError(_refusal(exc), gone=gone) from exc

    async def close(self) -> None:
        await self._http.close()
