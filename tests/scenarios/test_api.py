"""The ops API: token, filters, paging, stable errors."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from hotline.carrier.callers import QueueChoice, QueuePlan, ScriptedCaller
from hotline.settings import Settings, SettingsError
from tests.support.line import ADMIN_TOKEN, SHANGHAI, Line, RawResponse, running_line


@pytest.fixture
async def line(db_url: str) -> AsyncIterator[Line]:
    async with running_line(db_url) as running:
        yield running


async def test_token_is_required(line: Line) -> None:
    for token in (None, "wrong", ""):
        status, body = await line.api("/api/tickets", token=token)
        assert status == 401 and body["error"] == "unauthorized"
    status, body = await line.api("/healthz", token=None)
    assert status == 200 and body["status"] == "ok" and body["database"] == "ok"


async def test_filters_paging_and_lookup(line: Line) -> None:
    answered = await line.call(ScriptedCaller(keys=["2", "3"]))
    abandoned = await line.call(
        ScriptedCaller(keys=["2", "3"], queue=QueuePlan(then=QueueChoice.HANGUP))
    )
    line.clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)
    later = await line.call(ScriptedCaller(keys=["0"]))

    status, body = await line.api("/api/tickets?status=abandoned")
    assert status == 200 and [t["call_sid"] for t in body["tickets"]] == [abandoned.call_sid]
    status, body = await line.api("/api/tickets?specialty=tax-filing")
    assert body["total"] == 2
    status, body = await line.api("/api/tickets?from=2026-12-01&to=2026-12-31")
    assert [t["call_sid"] for t in body["tickets"]] == [later.call_sid]
    status, body = await line.api("/api/tickets?to=2026-11-30")
    assert body["total"] == 2
    status, body = await line.api("/api/tickets?limit=1&offset=1")
    assert body["total"] == 3 and len(body["tickets"]) == 1
    assert body["tickets"][0]["call_sid"] == abandoned.call_sid  # newest first
    status, body = await line.api(f"/api/tickets?call_sid={answered.call_sid}")
    number = body["tickets"][0]["number"]
    status, ticket = await line.api(f"/api/tickets/{number}")
    assert status == 200 and ticket["status"] == "answered" and ticket["history"]


async def test_errors_have_stable_ids(line: Line) -> None:
    status, body = await line.api("/api/tickets/E20990101-999999")
    assert (status, body["error"]) == (404, "ticket-not-found")
    for query in ("limit=abc", "offset=-1", "from=yesterday", "to=2026-13-01"):
        status, body = await line.api(f"/api/tickets?{query}")
        assert (status, body["error"]) == (400, "invalid-parameter"), query


def events_of(line: Line) -> list[dict[str, Any]]:
    """The log, which stays one JSON object a line whatever the requests held."""
    return [json.loads(entry) for entry in line.log.getvalue().splitlines()]


def assert_nothing_woke_anyone(line: Line, caplog: pytest.LogCaptureFixture) -> None:
    """The client's mistakes: no error in the log, and no traceback of aiohttp's own."""
    assert [e for e in events_of(line) if e["level"] in ("error", "critical")] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_token_of_bytes_that_are_no_ascii_is_refused(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    # Through a proxy, so that /metrics asks for the token (a local scraper needs none).
    proxied = ("X-Forwarded-For", "203.0.113.7")
    for token in (b"\xff\xfe", b"\xc3\x28", "令牌".encode(), ADMIN_TOKEN.encode() + b"\xa0"):
        for path in ("/api/tickets", "/api/kpi?from=2026-11-01&to=2026-11-30", "/metrics"):
            answer = await line.raw("GET", path, [("Authorization", b"Bearer " + token), proxied])
            assert answer.status == 401, (path, token, answer.body)
            assert json.loads(answer.body)["error"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
    refused = [e["event"] for e in events_of(line) if e["level"] == "warning"]
    assert refused.count("api_unauthorized") == 8 and refused.count("metrics_refused") == 4
    assert_nothing_woke_anyone(line, caplog)
    # The real token still works, through the same door.
    answer = await line.raw(
        "GET", "/metrics", [("Authorization", f"Bearer {ADMIN_TOKEN}"), proxied]
    )
    assert answer.status == 200


BAD_QUERIES = [
    "/api/tickets?from=0001-01-01",  # midnight in Beijing, year 0 in UTC
    "/api/tickets?from=0001-01-01T00:00:00%2B14:00",
    "/api/tickets?to=9999-12-31",  # the day after it is no date
    "/api/tickets?to=9999-12-31T23:59:59-12:00",  # year 10000 in UTC
    "/api/tickets?limit=%C2%B2",  # '²': str.isdigit() says yes, int() says no
    "/api/tickets?offset=%E2%91%A0",  # '①'
    "/api/tickets?limit=%D9%A3",  # '٣': int() reads 3, but it is no number of a URL
    "/api/tickets?status=%00",  # no PostgreSQL text holds a NUL
    "/api/tickets?call_sid=CA%00",
    "/api/tickets?specialty=tax%00",
    "/api/tickets?department=%1b",
    "/api/tickets?from=2026-11-30%00",
    "/api/kpi?from=0001-01-01&to=0001-01-31",
    "/api/kpi?from=2026-11-01&to=9999-12-31",
]


async def test_parameters_out_of_range_or_in_unicode_digits_are_bad_requests(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    for query in BAD_QUERIES:
        status, body = await line.api(query)
        assert (status, body["error"]) == (400, "invalid-parameter"), (query, body)
    # The first day with a UTC time is a period like any other.
    status, body = await line.api("/api/kpi?from=0001-01-02&to=0001-01-31")
    assert status == 200 and body["total"]["due"] == 0
    status, body = await line.api("/api/tickets?from=0001-01-02&to=9999-12-30")
    assert status == 200 and body["total"] == 0
    assert_nothing_woke_anyone(line, caplog)


async def test_ids_no_ticket_or_agent_can_have_are_not_found(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    for path, method in (
        ("/api/tickets/%00", "GET"),
        ("/api/tickets/E20261130-000001%00", "GET"),
        ("/api/tickets/%00/outcome", "POST"),
        ("/api/tickets/%00/actions", "POST"),
    ):
        status, body = await line.api(path, method=method, json={"action": "accept"})
        assert (status, body["error"]) == (404, "ticket-not-found"), path
    for agent in ("%00", "12%00", "%C2%B2%C2%B2"):
        status, body = await line.api(f"/api/agents/{agent}", method="DELETE")
        assert (status, body["error"]) == (404, "agent-not-found"), agent
    assert_nothing_woke_anyone(line, caplog)


async def test_an_agent_id_of_unicode_digits_is_refused(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    """'²²' would be saved, an agent whose id no keypad can key: one who never logs in."""
    agent = {
        "name": "李雷",
        "answers_on": "+8613800000099",
        "pin": "4321",
        "desks": {"tax-invoice": "primary"},
    }
    for raw in ("%C2%B2%C2%B2", "%D9%A3%D9%A3", "%EF%BC%91%EF%BC%92"):  # ²², ٣٣, １２
        status, body = await line.api(f"/api/agents/{raw}", method="PUT", json=agent)
        assert (status, body["error"]) == (400, "invalid-parameter"), (raw, body)
    status, body = await line.api("/api/agents")
    assert not [a for a in body["agents"] if not a["id"].isascii()]
    status, body = await line.api("/api/agents/77", method="PUT", json=agent)
    assert (status, body["id"]) == (200, "77")
    assert_nothing_woke_anyone(line, caplog)


async def act(
    line: Line,
    number: str,
    body: bytes,
    *headers: tuple[str, str],
    content_type: str = "application/json",
) -> RawResponse:
    return await line.raw(
        "POST",
        f"/api/tickets/{number}/actions",
        [("Authorization", f"Bearer {ADMIN_TOKEN}"), ("Content-Type", content_type), *headers],
        body,
    )


async def test_odd_bodies_and_if_match_are_bad_requests(
    line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    record = await line.call(ScriptedCaller(keys=["2", "3"]))
    number = (await line.ticket(record.call_sid))["number"]
    accept = b'{"action": "accept"}'
    for version in ('"\u00b2"', '"\u2460"', 'W/"\u0663"'):  # ², ①, ٣
        answer = await act(line, number, accept, ("If-Match", version))
        assert answer.status == 400, (version, answer.body)
        assert json.loads(answer.body)["error"] == "invalid-parameter"
    for body, error in (
        (b"[" * 20_000, "invalid-json"),  # the standard library recursed until it failed
        (b'{"action": ' + b"[" * 1025 + b"]" * 1025 + b"}", "invalid-json"),
        (b'{"action": "respond", "text": "\\ud800"}', "invalid-json"),  # no UTF-8 has it
        (b'{"action": "respond", "text": "\\u0000"}', "invalid-parameter"),
        # JSON, but pydantic's report of it recursed until it failed.
        (b'{"action": ' + b"[" * 1000 + b"]" * 1000 + b"}", "invalid-json"),
        (b'{"action": "accept", "x": ' + b"[" * 32 + b"]" * 32 + b"}", "invalid-json"),
        (b'{"action": "accept", "x": ' + b"[" * 31 + b"]" * 31 + b"}", "invalid-parameter"),
    ):
        answer = await act(line, number, body)
        assert answer.status == 400, (body[:60], answer.body)
        assert json.loads(answer.body)["error"] == error, (body[:60], answer.body)
    # JSON, but str() of it recursed until it failed.
    deep = b'{"outcome": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    answer = await line.raw(
        "POST", f"/api/tickets/{number}/outcome", [("Authorization", f"Bearer {ADMIN_TOKEN}")], deep
    )
    assert answer.status == 400 and json.loads(answer.body)["error"] == "invalid-json"
    # A JSON body is UTF-8 whatever charset the request names (RFC 8259).
    answer = await act(line, number, accept, content_type="application/json; charset=nope")
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["status"] == "accepted"
    assert_nothing_woke_anyone(line, caplog)


def test_an_admin_token_no_client_can_send_is_refused_at_start() -> None:
    for token in ("令牌-0123456789", "two words", "tab\there"):
        with pytest.raises(SettingsError, match="HOTLINE_ADMIN_TOKEN"):
            Settings(twilio_auth_token="x", admin_token=token).check_can_serve()
    Settings(twilio_auth_token="x", admin_token="a-plain_token.0123~+/=").check_can_serve()
