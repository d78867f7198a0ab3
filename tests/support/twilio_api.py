"""A stand-in for the parts of Twilio's REST API the service uses: `POST .../Calls.json`
(place a call) and `POST .../Queues/{QueueSid}/Members/{CallSid}.json` (take one caller
out of a queue), answered as the API documents; it writes down what it was asked.

Twilio's REST API cannot be reached from the tests. What a dequeue does to the call is the
virtual carrier's part (`VirtualCarrier.dequeue`): this is only the wire in front of it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import formatdate

from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.carrier.carrier import NotQueued, QueueNotFound, VirtualCarrier

API_VERSION = "2010-04-01"


@dataclass
class TwilioApi:
    account_sid: str
    auth_token: str
    base_url: str = ""
    # The carrier whose queues the Members resource works on; without one, no queue exists.
    carrier: VirtualCarrier | None = None
    created: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    # Numbers the API refuses (Twilio's error 21211, "Invalid 'To' Phone Number").
    invalid_numbers: set[str] = field(default_factory=set)
    # Every dequeue asked for: the path's queue and call, the form, and the status answered.
    dequeues: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{account}}/Calls.json", self._create)
        app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account}}/Queues/{{queue}}/Members/{{call}}.json",
            self._dequeue,
        )
        return app

    def _refused(self, request: web.Request) -> web.Response | None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        return None

    async def _create(self, request: web.Request) -> web.Response:
        if (refusal := self._refused(request)) is not None:
            return refusal
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if form.get("To") in self.invalid_numbers:
            self.refused.append(form)
            return _error(400, 21211, f"Invalid 'To' Phone Number: {form['To']}")
        sid = "CA" + secrets.token_hex(16)
        self.created.append({**form, "Sid": sid})
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json"
        return web.json_response(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form.get("To"),
                "to_formatted": form.get("To"),
                "from": form.get("From"),
                "from_formatted": form.get("From"),
                "status": "queued",
                "direction": "outbound-api",
                "answered_by": None,
                "api_version": API_VERSION,
                "date_created": None,
                "date_updated": None,
                "start_time": None,
                "end_time": None,
                "duration": None,
                "price": None,
                "price_unit": "USD",
                "parent_call_sid": None,
                "phone_number_sid": None,
                "forwarded_from": None,
                "group_sid": None,
                "caller_name": None,
                "queue_time": "0",
                "trunk_sid": None,
                "uri": uri,
                "subresource_uris": {},
            },
            status=201,
        )

    async def _dequeue(self, request: web.Request) -> web.Response:
        """Update a Member: dequeue it into the TwiML at `Url` (required, absolute)."""
        queue_sid, call_sid = request.match_info["queue"], request.match_info["call"]
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        asked = {"QueueSid": queue_sid, "CallSid": call_sid, **form}
        response = self._refused(request) or self._dequeued(queue_sid, call_sid, form)
        self.dequeues.append({**asked, "status": str(response.status)})
        return response

    def _dequeued(self, queue_sid: str, call_sid: str, form: dict[str, str]) -> web.Response:
        url = form.get("Url", "")
        if not url.startswith(("https://", "http://")):
            return _error(400, 21205, "Url is not a valid URL")
        if self.carrier is None:
            return _error(404, 20404, "The requested resource was not found")
        try:
            member = self.carrier.dequeue(queue_sid, call_sid, url, form.get("Method", "POST"))
        except QueueNotFound:
            return _error(404, 20404, "The requested resource was not found")
        except NotQueued:
            # Only the first request for a member succeeds; later ones get a 400.
            return _error(400, 21220, "Call is not in the queue")
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Queues/{queue_sid}/Members/{call_sid}"
        return web.json_response(
            {
                "call_sid": member.call_sid,
                "date_enqueued": formatdate(usegmt=True),
                "position": member.position,
                "uri": uri + ".json",
                "wait_time": member.wait_time,
                "queue_sid": member.queue_sid,
            }
        )


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


@asynccontextmanager
async def twilio_api(
    account_sid: str, auth_token: str, carrier: VirtualCarrier | None = None
) -> AsyncIterator[TwilioApi]:
    api = TwilioApi(account_sid, auth_token, carrier=carrier)
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    api.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield api
    finally:
        await server.close()
