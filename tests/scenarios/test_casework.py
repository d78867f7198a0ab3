"""The departments' side: the handling state machine, department tokens and scope, actions
through the real API, deadlines and their warnings, and concurrent updates."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from casework.actions import (
    ActionForbidden,
    Caller,
    CaseAction,
    IllegalAction,
    InvalidInput,
    Role,
    check_input,
    due_state,
    next_status,
)
from casework.tickets import TicketStatus
from hotline.auth.tokens import identify, token_digest
from hotline.carrier.callers import ScriptedCaller
from hotline.cli import main
from hotline.config import ConfigInvalid, load_config
from hotline.store.casework import CaseStore
from hotline.store.engine import make_engine
from hotline.store.tables import callback_jobs, tickets
from tests.support.line import ADMIN_TOKEN, SHANGHAI, Line, running_line
from tests.support.paths import CONFIG_DIR

S = TicketStatus
A = CaseAction
TAX = "tax-bureau-token-0123456789"
MARKET = "market-regulation-token-0123456789"
TAX_DESK = ["2", "3"]  # tax-filing, of the tax bureau
MARKET_DESK = ["1", "1"]  # business-registration, of market regulation


# -- the state machine, pure ------------------------------------------------------------------

LEGAL = [
    (S.ANSWERED, A.ACCEPT, Role.DEPARTMENT, S.ACCEPTED),
    (S.VOICEMAIL, A.ACCEPT, Role.DEPARTMENT, S.ACCEPTED),
    (S.ABANDONED, A.ACCEPT, Role.CENTRE, S.ACCEPTED),
    (S.CALLBACK_FAILED, A.ACCEPT, Role.DEPARTMENT, S.ACCEPTED),
    (S.REASSIGNED, A.ACCEPT, Role.DEPARTMENT, S.ACCEPTED),
    (S.REOPENED, A.ACCEPT, Role.DEPARTMENT, S.ACCEPTED),
    (S.ACCEPTED, A.RESPOND, Role.DEPARTMENT, S.RESPONDED),
    (S.RESPONDED, A.RESPOND, Role.DEPARTMENT, S.RESPONDED),
    (S.ACCEPTED, A.RESOLVE, Role.DEPARTMENT, S.RESOLVED),
    (S.RESPONDED, A.RESOLVE, Role.CENTRE, S.RESOLVED),
    (S.ANSWERED, A.RETURN, Role.DEPARTMENT, S.RETURNED),
    (S.RESPONDED, A.RETURN, Role.DEPARTMENT, S.RETURNED),
    (S.RETURNED, A.REASSIGN, Role.CENTRE, S.REASSIGNED),
    (S.ACCEPTED, A.REASSIGN, Role.CENTRE, S.REASSIGNED),
    (S.ACCEPTED, A.EXTEND, Role.DEPARTMENT, S.ACCEPTED),
    (S.RESOLVED, A.CLOSE, Role.DEPARTMENT, S.CLOSED),
    (S.RESOLVED, A.CLOSE, Role.CENTRE, S.CLOSED),
    (S.RETURNED, A.CLOSE, Role.CENTRE, S.CLOSED),
    (S.RESOLVED, A.REOPEN, Role.SYSTEM, S.REOPENED),
    (S.CLOSED, A.REOPEN, Role.CENTRE, S.REOPENED),
    (S.CLOSED, A.REOPEN, Role.SYSTEM, S.REOPENED),
    (S.RESOLVED, A.SET_DISTRICT, Role.DEPARTMENT, S.RESOLVED),
]


@pytest.mark.parametrize(("current", "action", "role", "after"), LEGAL)
def test_legal_transitions(
    current: TicketStatus, action: CaseAction, role: Role, after: TicketStatus
) -> None:
    assert next_status(current, action, role) is after


ILLEGAL = [
    (S.ANSWERED, A.RESOLVE, Role.DEPARTMENT, "must be accepted before it is resolved"),
    (S.REOPENED, A.RESOLVE, Role.CENTRE, "must be accepted before it is resolved"),
    (S.ANSWERED, A.RESPOND, Role.DEPARTMENT, "respond is allowed only from accepted, responded"),
    (S.ACCEPTED, A.ACCEPT, Role.DEPARTMENT, "accept is allowed only from answered, abandoned"),
    (S.CLOSED, A.ACCEPT, Role.DEPARTMENT, "a closed ticket can only be reopened"),
    (S.CLOSED, A.CLOSE, Role.CENTRE, "a closed ticket can only be reopened"),
    (S.CLOSED, A.REASSIGN, Role.CENTRE, "a closed ticket can only be reopened"),
    (S.CLOSED, A.SET_DISTRICT, Role.CENTRE, "a closed ticket can only be reopened"),
    (S.RETURNED, A.ACCEPT, Role.DEPARTMENT, "accept is allowed only from"),
    (S.RETURNED, A.CLOSE, Role.DEPARTMENT, "close is allowed only from resolved"),
    (S.IN_QUEUE, A.ACCEPT, Role.CENTRE, "accept is allowed only from"),
    (S.ACCEPTED, A.CLOSE, Role.CENTRE, "close is allowed only from resolved, returned"),
    (S.ACCEPTED, A.REOPEN, Role.CENTRE, "reopen is allowed only from resolved, closed"),
    (S.RESOLVED, A.RETURN, Role.DEPARTMENT, "return is allowed only from"),
]


@pytest.mark.parametrize(("current", "action", "role", "sentence"), ILLEGAL)
def test_illegal_transitions_say_why(
    current: TicketStatus, action: CaseAction, role: Role, sentence: str
) -> None:
    with pytest.raises(IllegalAction) as refused:
        next_status(current, action, role)
    assert not isinstance(refused.value, ActionForbidden)
    assert refused.value.status is current and refused.value.action is action
    assert sentence in refused.value.sentence
    assert refused.value.message("E1").startswith(f"ticket E1 is {current.value}; ")


@pytest.mark.parametrize(
    ("action", "role"),
    [
        (A.REASSIGN, Role.DEPARTMENT),
        (A.APPROVE_EXTENSION, Role.DEPARTMENT),
        (A.REOPEN, Role.DEPARTMENT),
        (A.RETURN, Role.CENTRE),
        (A.EXTEND, Role.CENTRE),
        (A.ACCEPT, Role.SYSTEM),
        (A.CLOSE, Role.SYSTEM),
    ],
)
def test_roles_are_checked_before_statuses(action: CaseAction, role: Role) -> None:
    for current in (S.ANSWERED, S.ACCEPTED, S.RESOLVED, S.CLOSED, S.RETURNED):
        with pytest.raises(ActionForbidden):
            next_status(current, action, role)


def test_extension_once_and_approved_once() -> None:
    asked = {"days": 3, "reason": "site visit", "requested_at": "2026-12-01T00:00:00+00:00"}
    with pytest.raises(IllegalAction, match="already extended once"):
        next_status(S.ACCEPTED, A.EXTEND, Role.DEPARTMENT, extension=asked)
    with pytest.raises(IllegalAction, match="no extension was asked for"):
        next_status(S.ACCEPTED, A.APPROVE_EXTENSION, Role.CENTRE, extension=None)
    assert next_status(S.ACCEPTED, A.APPROVE_EXTENSION, Role.CENTRE, extension=asked) is S.ACCEPTED
    approved = {**asked, "approved_at": "2026-12-01T01:00:00+00:00"}
    with pytest.raises(IllegalAction, match="already approved"):
        next_status(S.ACCEPTED, A.APPROVE_EXTENSION, Role.CENTRE, extension=approved)


def test_inputs_each_action_needs() -> None:
    none: dict[str, Any] = {"text": None, "department": None, "days": None, "district": None}
    check_input(A.ACCEPT, **none)
    for action in (A.RESPOND, A.RESOLVE, A.RETURN, A.EXTEND, A.REASSIGN, A.SET_DISTRICT):
        with pytest.raises(InvalidInput):
            check_input(action, **none)
    with pytest.raises(InvalidInput):
        check_input(A.RESPOND, **{**none, "text": "   "})
    for days in (0, 61, True, None):
        with pytest.raises(InvalidInput):
            check_input(A.EXTEND, **{**none, "text": "why", "days": days})
    check_input(A.EXTEND, **{**none, "text": "why", "days": 60})
    with pytest.raises(InvalidInput, match="days is only for extend"):
        check_input(A.ACCEPT, **{**none, "days": 3})
    with pytest.raises(InvalidInput, match="department is only for reassign"):
        check_input(A.RESPOND, **{**none, "text": "ok", "department": "customs"})


def test_due_state() -> None:
    due = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    assert due_state(due, due - timedelta(hours=25), None, S.ACCEPTED) is None
    assert due_state(due, due - timedelta(hours=24), None, S.ACCEPTED) == "24h"
    assert due_state(due, due - timedelta(seconds=1), None, S.ANSWERED) == "24h"
    assert due_state(due, due, None, S.RETURNED) == "overdue"
    assert due_state(due, due + timedelta(days=9), None, S.ACCEPTED) == "overdue"
    assert due_state(due, due + timedelta(days=9), due, S.RESPONDED) is None
    assert due_state(due, due + timedelta(days=9), None, S.RESOLVED) is None
    assert due_state(due, due + timedelta(days=9), None, S.CLOSED) is None
    assert due_state(None, due, None, S.ACCEPTED) is None


def test_callers_name_themselves_and_see_their_own() -> None:
    assert Caller.centre().actor == "centre"
    assert Caller.of_department("tax-bureau").actor == "department:tax-bureau"
    assert Caller.system("survey").actor == "system:survey"
    assert Caller.of_department("tax-bureau").may_see("tax-bureau")
    assert not Caller.of_department("tax-bureau").may_see("customs")
    assert not Caller.of_department("tax-bureau").may_see(None)
    assert Caller.centre().may_see("customs") and Caller.system("survey").may_see(None)


# -- tokens and access.yaml -------------------------------------------------------------------


def _access(directory: Path, body: str) -> Path:
    path = directory / "access.yaml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def with_tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped config with department tokens; one directory, so the line's classifier
    is trained once for the module."""
    return _with_tokens(tmp_path_factory.mktemp("casework"))


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy to edit."""
    return _with_tokens(tmp_path)


def _with_tokens(directory: Path) -> Path:
    target = directory / "config"
    shutil.copytree(CONFIG_DIR, target)
    _access(
        target,
        "departments:\n"
        f"  tax-bureau:\n    - {token_digest('an-old-tax-token')}\n    - {token_digest(TAX)}\n"
        f"  market-regulation:\n    - {token_digest(MARKET)}\n",
    )
    return target


def test_shipped_access_file_holds_no_tokens() -> None:
    assert load_config(CONFIG_DIR).access == {}


def test_tokens_identify_their_department(config_dir: Path) -> None:
    access = load_config(config_dir).access
    assert identify(TAX, ADMIN_TOKEN, access) == Caller.of_department("tax-bureau")
    assert identify("an-old-tax-token", ADMIN_TOKEN, access) == Caller.of_department("tax-bureau")
    assert identify(MARKET, ADMIN_TOKEN, access) == Caller.of_department("market-regulation")
    assert identify(ADMIN_TOKEN, ADMIN_TOKEN, access) == Caller.centre()
    assert identify("guess", ADMIN_TOKEN, access) is None
    assert identify("", "", access) is None


def test_access_file_errors_name_file_line_and_field(config_dir: Path) -> None:
    def errors(body: str) -> list[str]:
        _access(config_dir, body)
        with pytest.raises(ConfigInvalid) as caught:
            load_config(config_dir)
        return sorted(str(e) for e in caught.value.errors)

    path = config_dir / "access.yaml"
    assert errors("departments:\n  commerce:\n    - not-a-digest\n") == [
        f"{path}:3: departments.commerce.0: String should match pattern '^[0-9a-f]{{64}}$'"
    ]
    assert errors(
        "departments:\n"
        f"  tax-bureau:\n    - {token_digest(TAX)}\n"
        f"  tax-bureaux:\n    - {token_digest(MARKET)}\n"
        f"  customs:\n    - {token_digest(TAX)}\n"
    ) == [
        f"{path}:4: departments.tax-bureaux: unknown department 'tax-bureaux' "
        "(see specialties.yaml departments)",
        f"{path}:7: departments.customs.0: this digest is already a token of 'tax-bureau'",
    ]


def test_cli_makes_a_token_and_its_line(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["departments", "token", "customs", "--config", str(config_dir)]) == 0
    out = capsys.readouterr().out
    token = out.splitlines()[0].rsplit(" ", 1)[1]
    digest = out.splitlines()[-1].strip().removeprefix("- ")
    assert digest == token_digest(token) and len(token) >= 40
    path = config_dir / "access.yaml"
    path.write_text(path.read_text() + f"  customs:\n    - {digest}\n", encoding="utf-8")
    assert identify(token, "", load_config(config_dir).access) == Caller.of_department("customs")
    assert main(["departments", "token", "no-such-department", "--config", str(config_dir)]) == 2


# -- through the real app ---------------------------------------------------------------------


@pytest.fixture
async def line(db_url: str, with_tokens: Path) -> AsyncIterator[Line]:
    async with running_line(db_url, config_dir=with_tokens) as running:
        yield running


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[CaseStore]:
    """A second process's view of the same database (its own engine)."""
    engine = make_engine(db_url)
    yield CaseStore(engine, SHANGHAI)
    await engine.dispose()


async def new_ticket(line: Line, keys: list[str]) -> dict[str, Any]:
    call = await line.call(ScriptedCaller(keys=keys))
    return await line.ticket(call.call_sid)


async def act(
    line: Line, number: str, token: str, action: str, **body: Any
) -> tuple[int, dict[str, Any]]:
    status, answer = await line.api(
        f"/api/tickets/{number}/actions", token, method="POST", json={"action": action, **body}
    )
    return status, answer


async def survey_jobs(db_url: str, number: str) -> list[tuple[str, str | None, str]]:
    """The ticket's survey jobs: (dedupe with the ticket's id as `#`, desk, state)."""
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(callback_jobs.c.dedupe, callback_jobs.c.desk, callback_jobs.c.state)
                .join(tickets, tickets.c.id == callback_jobs.c.ticket_id)
                .where(tickets.c.number == number)
                .where(callback_jobs.c.kind == "survey")
                .order_by(callback_jobs.c.id)
            )
            ticket_id = await conn.scalar(select(tickets.c.id).where(tickets.c.number == number))
            return [(d.replace(f":{ticket_id}:", ":#:"), desk, state) for d, desk, state in rows]
    finally:
        await engine.dispose()


async def test_a_department_accepts_responds_and_resolves(
    line: Line, db_url: str, store: CaseStore
) -> None:
    ticket = await new_ticket(line, TAX_DESK)
    number = ticket["number"]
    assert (ticket["department"], ticket["status"]) == ("tax-bureau", "answered")
    start = ticket["version"]

    line.clock.now += timedelta(hours=1)
    status, accepted = await act(line, number, TAX, "accept")
    assert status == 200 and accepted["status"] == "accepted"
    assert accepted["accepted_at"] == line.clock.now.astimezone(UTC).isoformat()
    first_response = line.clock.now + timedelta(hours=1)
    line.clock.now = first_response
    status, responded = await act(line, number, TAX, "respond", text="we will call on Monday")
    assert status == 200 and responded["response"] == "we will call on Monday"
    line.clock.now += timedelta(hours=1)
    status, responded = await act(line, number, TAX, "respond", text="the refund is approved")
    assert responded["responded_at"] == first_response.astimezone(UTC).isoformat()
    assert responded["response"] == "the refund is approved"
    status, ticket = await act(line, number, TAX, "set-district", district="chaoyang")
    assert status == 200 and ticket["district"] == "chaoyang"
    line.clock.now += timedelta(hours=1)
    status, resolved = await act(line, number, TAX, "resolve", text="refund paid on 2026-12-01")
    assert status == 200 and resolved["status"] == "resolved"
    assert resolved["resolution"] == "refund paid on 2026-12-01"
    assert resolved["resolved_at"] == line.clock.now.astimezone(UTC).isoformat()
    assert resolved["version"] == start + 5

    status, read = await line.api(f"/api/tickets/{number}", TAX)
    assert status == 200 and read["history"] == resolved["history"]
    handling = [h for h in read["history"] if h["actor"] != "ivr"]
    assert [(h["actor"], h["note"], h["from_status"], h["to_status"]) for h in handling] == [
        ("department:tax-bureau", "accept", "answered", "accepted"),
        ("department:tax-bureau", "respond", "accepted", "responded"),
        ("department:tax-bureau", "respond", None, None),
        ("department:tax-bureau", "set-district", None, None),
        ("department:tax-bureau", "resolve", "responded", "resolved"),
    ]
    assert handling[1]["detail"] == {"action": "respond", "text": "we will call on Monday"}
    assert handling[-1]["at"] == line.clock.now.astimezone(UTC).isoformat()
    assert await survey_jobs(db_url, number) == [("survey:#:1", "tax-filing", "pending")]

    # The survey finds the enterprise dissatisfied: the system reopens; resolved again, it is
    # surveyed again.
    reopened = await store.act(
        number, A.REOPEN, Caller.system("survey"), text="dissatisfied: no refund", at=line.clock.now
    )
    assert reopened["status"] == "reopened" and reopened["resolved_at"] is None
    assert reopened["history"][-1]["actor"] == "system:survey"
    assert reopened["history"][-1]["detail"]["text"] == "dissatisfied: no refund"
    for action, text in (("accept", None), ("resolve", "paid now")):
        status, _ = await act(line, number, TAX, action, **({"text": text} if text else {}))
        assert status == 200
    status, closed = await act(line, number, TAX, "close")
    assert status == 200 and closed["status"] == "closed" and closed["closed_at"]
    assert [job[0] for job in await survey_jobs(db_url, number)] == ["survey:#:1", "survey:#:2"]


async def test_a_department_sees_and_touches_only_its_own(line: Line) -> None:
    tax = await new_ticket(line, TAX_DESK)
    market = await new_ticket(line, MARKET_DESK)
    assert market["department"] == "market-regulation"

    status, body = await line.api("/api/tickets", TAX)
    assert status == 200 and [t["number"] for t in body["tickets"]] == [tax["number"]]
    status, body = await line.api("/api/tickets?department=market-regulation", TAX)
    assert (status, body["total"]) == (200, 0)
    status, body = await line.api("/api/tickets?department=market-regulation", ADMIN_TOKEN)
    assert [t["number"] for t in body["tickets"]] == [market["number"]]
    status, body = await line.api("/api/tickets", ADMIN_TOKEN)
    assert body["total"] == 2

    for token, other in ((TAX, market), (MARKET, tax)):
        status, body = await line.api(f"/api/tickets/{other['number']}", token)
        assert (status, body["error"]) == (404, "ticket-not-found")
        status, body = await act(line, other["number"], token, "accept")
        assert (status, body["error"]) == (404, "ticket-not-found")
    status, body = await line.api(f"/api/tickets/{market['number']}", MARKET)
    assert status == 200 and body["status"] == "answered"  # untouched by the tax bureau

    for method, path in (
        ("GET", "/api/agents"),
        ("PUT", "/api/agents/1001/state"),
        ("GET", "/api/live"),
        ("POST", f"/api/tickets/{tax['number']}/outcome"),
    ):
        status, body = await line.api(path, TAX, method=method, json={})
        assert (status, body["error"]) == (403, "forbidden"), path
    status, body = await line.api("/api/agents", "not-a-token")
    assert (status, body["error"]) == (401, "unauthorized")
    status, _ = await line.api("/api/agents", ADMIN_TOKEN)
    assert status == 200


async def test_illegal_actions_are_refused_naming_the_state(line: Line) -> None:
    number = (await new_ticket(line, TAX_DESK))["number"]
    status, body = await act(line, number, TAX, "resolve", text="done")
    assert (status, body["error"]) == (409, "illegal-action")
    assert body["message"] == (
        f"ticket {number} is answered; a ticket must be accepted before it is resolved"
    )
    status, body = await act(line, number, TAX, "reassign", department="customs")
    assert (status, body["error"]) == (403, "forbidden")
    for bad in (
        {"action": "respond"},
        {"action": "dance"},
        {"action": "extend", "reason": "why", "days": "3"},
        {"action": "accept", "colour": "red"},
        {"action": "respond", "text": "a", "reason": "b"},
        {"action": "set-district", "district": "atlantis"},
        {"action": "accept", "days": 3},
    ):
        status, body = await line.api(
            f"/api/tickets/{number}/actions", TAX, method="POST", json=bad
        )
        assert (status, body["error"]) == (400, "invalid-parameter"), bad
    status, body = await line.api(
        f"/api/tickets/{number}/actions", ADMIN_TOKEN, method="POST", json=["accept"]
    )
    assert (status, body["error"]) == (400, "invalid-json")

    for action, body_ in (("accept", {}), ("resolve", {"text": "done"}), ("close", {})):
        status, ticket = await act(line, number, TAX, action, **body_)
        assert status == 200, ticket
    for action, body_ in (
        ("accept", {}),
        ("respond", {"text": "more"}),
        ("set-district", {"district": "haidian"}),
    ):
        status, body = await act(line, number, TAX, action, **body_)
        assert (status, body["error"]) == (409, "illegal-action")
        assert body["message"].startswith(f"ticket {number} is closed; ")
    status, body = await act(line, number, ADMIN_TOKEN, "close")
    assert (status, body["error"]) == (409, "illegal-action")
    status, body = await act(line, number, TAX, "reopen")
    assert (status, body["error"]) == (403, "forbidden")
    status, ticket = await act(line, number, ADMIN_TOKEN, "reopen", text="the enterprise called")
    assert status == 200 and ticket["status"] == "reopened" and ticket["closed_at"] is None
    assert ticket["history"][-1]["actor"] == "centre"


async def test_the_centre_reassigns_a_returned_ticket(line: Line) -> None:
    number = (await new_ticket(line, TAX_DESK))["number"]
    status, body = await act(line, number, TAX, "return")
    assert (status, body["error"]) == (400, "invalid-parameter")  # a reason is needed
    status, ticket = await act(line, number, TAX, "return", reason="a trademark matter")
    assert status == 200 and ticket["status"] == "returned"
    status, body = await act(line, number, TAX, "accept")
    assert (status, body["error"]) == (409, "illegal-action")
    assert body["message"].startswith(f"ticket {number} is returned; ")
    status, body = await act(line, number, ADMIN_TOKEN, "reassign", department="nowhere")
    assert (status, body["error"]) == (400, "invalid-parameter")

    status, ticket = await act(
        line, number, ADMIN_TOKEN, "reassign", department="market-regulation"
    )
    assert status == 200 and ticket["status"] == "reassigned"
    assert ticket["department"] == "market-regulation"
    assert ticket["history"][-2]["detail"] == {"action": "return", "text": "a trademark matter"}
    assert ticket["history"][-1]["actor"] == "centre"

    status, body = await line.api("/api/tickets", MARKET)
    assert [t["number"] for t in body["tickets"]] == [number]
    status, ticket = await act(line, number, MARKET, "accept")
    assert status == 200 and ticket["status"] == "accepted"
    status, body = await line.api(f"/api/tickets/{number}", TAX)
    assert status == 404
    status, body = await line.api("/api/tickets", TAX)
    assert body["total"] == 0


async def test_a_deadline_is_extended_once_when_the_centre_approves(
    line: Line, with_tokens: Path
) -> None:
    ticket = await new_ticket(line, TAX_DESK)
    number, due = ticket["number"], datetime.fromisoformat(ticket["due_at"])
    # Called Monday 2026-11-30; 3 days: due at the end of Thursday 3 December.
    assert due == datetime(2026, 12, 4, tzinfo=SHANGHAI)
    status, body = await act(line, number, TAX, "extend", reason="needs a site visit")
    assert (status, body["error"]) == (400, "invalid-parameter")  # no days
    status, body = await act(line, number, ADMIN_TOKEN, "approve-extension")
    assert (status, body["error"]) == (409, "illegal-action")
    assert "no extension was asked for" in body["message"]

    status, ticket = await act(line, number, TAX, "extend", reason="needs a site visit", days=2)
    assert status == 200 and ticket["status"] == "answered"
    assert datetime.fromisoformat(ticket["due_at"]) == due  # not before the centre approves
    assert ticket["extension"]["days"] == 2
    assert ticket["extension"]["requested_by"] == "department:tax-bureau"
    status, body = await act(line, number, TAX, "extend", reason="more", days=5)
    assert (status, body["error"]) == (409, "illegal-action")
    assert body["message"] == f"ticket {number} is answered; its deadline was already extended once"
    status, body = await act(line, number, TAX, "approve-extension")
    assert (status, body["error"]) == (403, "forbidden")

    status, ticket = await act(line, number, ADMIN_TOKEN, "approve-extension")
    assert status == 200
    working = load_config(with_tokens).plan.calendar.working_days
    # Two more days after Thursday: Friday and Monday in working days; Sat and Sun if not.
    expected = datetime(2026, 12, 8 if working else 6, tzinfo=SHANGHAI)
    assert datetime.fromisoformat(ticket["due_at"]) == expected
    assert ticket["extension"]["approved_by"] == "centre"
    assert datetime.fromisoformat(ticket["extension"]["due_before"]) == due
    status, body = await act(line, number, ADMIN_TOKEN, "approve-extension")
    assert (status, body["error"]) == (409, "illegal-action")


async def test_concurrent_actions_lose_nothing(line: Line) -> None:
    number = (await new_ticket(line, TAX_DESK))["number"]
    status, ticket = await act(line, number, TAX, "accept")
    start = ticket["version"]
    results = await asyncio.gather(
        *(act(line, number, TAX, "respond", text=f"answer {i}") for i in range(10))
    )
    assert [status for status, _ in results] == [200] * 10
    status, ticket = await line.api(f"/api/tickets/{number}", TAX)
    assert ticket["version"] == start + 10
    texts = [h["detail"]["text"] for h in ticket["history"] if h["note"] == "respond"]
    assert sorted(texts) == sorted(f"answer {i}" for i in range(10))
    assert sorted(body["version"] for _, body in results) == list(range(start + 1, start + 11))

    other = (await new_ticket(line, TAX_DESK))["number"]
    twice = await asyncio.gather(act(line, other, TAX, "accept"), act(line, other, TAX, "accept"))
    assert sorted(status for status, _ in twice) == [200, 409]
    assert [b["error"] for s, b in twice if s == 409] == ["illegal-action"]
    status, ticket = await line.api(f"/api/tickets/{other}", TAX)
    assert status == 200
    assert [h["note"] for h in ticket["history"]].count("accept") == 1


async def test_a_stale_version_is_refused(line: Line) -> None:
    number = (await new_ticket(line, TAX_DESK))["number"]
    status, read = await line.api(f"/api/tickets/{number}", TAX)
    version = read["version"]
    status, _ = await act(line, number, TAX, "accept", version=version)
    assert status == 200
    status, body = await act(line, number, TAX, "respond", text="late", version=version)
    assert (status, body["error"]) == (409, "version-conflict")
    headers = {"Authorization": f"Bearer {TAX}", "If-Match": f'"{version}"'}
    url = f"{line.base_url}/api/tickets/{number}/actions"
    payload = {"action": "respond", "text": "late"}
    async with line.session.post(url, json=payload, headers=headers) as response:
        assert response.status == 409
        assert (await response.json())["error"] == "version-conflict"
    headers["If-Match"] = f'"{version + 1}"'
    async with line.session.post(url, json=payload, headers=headers) as response:
        assert response.status == 200
        assert response.headers["ETag"] == f'"{version + 2}"'
    status, ticket = await line.api(f"/api/tickets/{number}", TAX)
    assert [h["detail"].get("text") for h in ticket["history"]].count("late") == 1


async def test_due_lists_and_warnings(line: Line, db_url: str) -> None:
    first = (await new_ticket(line, TAX_DESK))["number"]  # due 2026-12-04 00:00 Shanghai
    line.clock.now = datetime(2026, 12, 1, 12, 0, tzinfo=SHANGHAI)
    second = (await new_ticket(line, MARKET_DESK))["number"]  # due 2026-12-05 00:00
    responded = (await new_ticket(line, TAX_DESK))["number"]  # due 2026-12-05 00:00
    for action, body in (("accept", {}), ("respond", {"text": "on it"})):
        assert (await act(line, responded, TAX, action, **body))[0] == 200

    async def due(kind: str, token: str = ADMIN_TOKEN) -> list[str]:
        status, body = await line.api(f"/api/tickets?due={kind}", token)
        assert status == 200, body
        return sorted(t["number"] for t in body["tickets"])

    line.clock.now = datetime(2026, 12, 2, 23, 0, tzinfo=SHANGHAI)
    assert (await due("24h"), await due("overdue")) == ([], [])
    line.clock.now = datetime(2026, 12, 3, 8, 0, tzinfo=SHANGHAI)
    assert (await due("24h"), await due("overdue")) == ([first], [])
    line.clock.now = datetime(2026, 12, 4, 8, 0, tzinfo=SHANGHAI)
    assert (await due("24h"), await due("overdue")) == ([second], [first])
    assert (await due("overdue", MARKET), await due("24h", MARKET)) == ([], [second])
    status, body = await line.api("/api/tickets?due=soon")
    assert (status, body["error"]) == (400, "invalid-parameter")

    # Two processes sweep at once, twice: each ticket is warned once per level.
    engines = [make_engine(db_url) for _ in range(2)]
    stores = [CaseStore(engine, SHANGHAI) for engine in engines]
    try:
        listed = await stores[0].due("overdue", line.clock.now)
        assert [t["number"] for t in listed] == [first]
        assert await stores[0].due("overdue", line.clock.now, "market-regulation") == []
        with capture_logs() as logged:
            at = datetime(2026, 12, 3, 8, 0, tzinfo=SHANGHAI)
            swept = await asyncio.gather(*(s.warn_due(at) for s in stores))
            assert sorted(w for ws in swept for w in ws) == [("24h", first)]
            at = datetime(2026, 12, 4, 8, 0, tzinfo=SHANGHAI)
            swept = await asyncio.gather(*(s.warn_due(at) for s in stores))
            swept += [await stores[1].warn_due(at)]
            assert sorted(w for ws in swept for w in ws) == [("24h", second), ("overdue", first)]
            assert await stores[0].warn_due(at + timedelta(days=3)) == [("overdue", second)]
        warnings = sorted((e["number"], e["event"], e["department"]) for e in logged)
        assert warnings == [
            (first, "ticket_due_soon", "tax-bureau"),
            (first, "ticket_overdue", "tax-bureau"),
            (second, "ticket_due_soon", "market-regulation"),
            (second, "ticket_overdue", "market-regulation"),
        ]
        assert all(e["log_level"] == "warning" and e["due_at"] for e in logged)
    finally:
        for engine in engines:
            await engine.dispose()
