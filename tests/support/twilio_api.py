"""A stand-in for Twilio's Calls API: answers `POST .../Calls.json` as the API documents and
writes down what it was asked. Twilio's REST API cannot be reached from the tests."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class CallsApi:
    account_sid: str
    auth_token: str
    base_url: str = ""
    created: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    # Numbers the API refuses (Twilio's error 21211, "Invalid 'To' Phone Number").
    invalid_numbers: set[str] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._create)
        return app

    async def _create(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if form.get("To") in self.invalid_numbers:
            self.refused.append(form)
            return _error(400, 21211, f"Invalid 'To' Phone Number: {form['To']}")
        sid = "CA" + secrets.token_hex(16)
        self.created.append({**form, "Sid": sid})
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json"
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
                "api_version": "2010-04-01",
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
async def calls_api(account_sid: str, auth_token: str) -> AsyncIterator[CallsApi]:
    api = CallsApi(account_sid, auth_token)
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    api.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield api
    finally:
        await server.close()
