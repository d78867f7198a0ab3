"""The ops API: token, filters, paging, stable errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from hotline.carrier.callers import QueueChoice, QueuePlan, ScriptedCaller
from tests.support.line import SHANGHAI, Line, running_line


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
