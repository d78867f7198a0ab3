"""The ops API: health, and tickets for the hotline centre. Bearer token, JSON, stable errors."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from casework.actions import Caller, DueState, Role
from hotline.auth.pins import hash_pin
from hotline.auth.tokens import identify
from hotline.config.schema import AgentPhone
from hotline.store.casework import due_condition, visible_to
from hotline.store.tickets import MAX_PAGE, CallRef, TicketQuery
from hotline.web.api import openapi
from hotline.web.keys import AGENTS, CLOCK, CONFIG, SETTINGS, SHARED, STORE, TICKETS
from hotline.web.staff import directory
from ivr.actions import TicketChange
from routing.acd import Agent, AgentState, DeskLevel, Outcome

log = structlog.get_logger("hotline.api")


def error(status: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    """Errors carry a stable id (`code`) that scripts can rely on, and a sentence for people."""
    return status(
        text=web.json_response({"error": code, "message": message}).text,
        content_type="application/json",
    )


# Who called the API (set by `require_token` on every /api/ request).
CALLER = web.RequestKey("caller", Caller)
# What a department's token may reach: its tickets, and nothing of the centre's.
DEPARTMENT_ROUTES = frozenset(
    {
        ("GET", "/api/tickets"),
        ("GET", "/api/tickets/{number}"),
        ("POST", "/api/tickets/{number}/actions"),
    }
)


@web.middleware
async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/api/") and request.path != openapi.PATH:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        caller = (
            identify(
                token,
                request.app[SETTINGS].admin_token,
                request.app[CONFIG].current.access,
            )
            if scheme.lower() == "bearer"
            else None
        )
        if caller is None:
            log.warning("api_unauthorized", path=request.path)
            raise web.HTTPUnauthorized(
                text='{"error": "unauthorized", "message": "a valid bearer token is required"}',
                content_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if caller.role is Role.DEPARTMENT:
            resource = request.match_info.route.resource
            route = (request.method, resource.canonical if resource is not None else "")
            if route not in DEPARTMENT_ROUTES:
                log.warning("api_forbidden", path=request.path, actor=caller.actor)
                raise error(
                    web.HTTPForbidden,
                    "forbidden",
                    "a department's token may only list, read and act on its own tickets",
                )
        request[CALLER] = caller
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/api/"):
            raise _as_json(exc) from None
        raise
    except Exception:
        if not request.path.startswith("/api/"):
            raise
        log.exception("api_failed", path=request.path)
        raise error(
            web.HTTPServiceUnavailable,
            "storage-unavailable",
            "the ticket store cannot answer now; calls are still being routed",
        ) from None
    return response


# aiohttp's own refusals, which answer in plain text, as the API's stable error ids.
_HTTP_ERRORS = {
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
}


def _as_json(exc: web.HTTPException) -> web.HTTPException:
    """An error raised by aiohttp itself (no such route, a body over the limit) in the
    API's JSON shape; the API's own errors, already JSON, pass unchanged."""
    if exc.status < 400 or exc.content_type == "application/json":
        return exc
    code = _HTTP_ERRORS.get(exc.status, "bad-request" if exc.status < 500 else "server-error")
    kept = {k: v for k, v in exc.headers.items() if k not in ("Content-Type", "Content-Length")}
    message = (exc.text or exc.reason).removeprefix(f"{exc.status}: ")
    converted = web.HTTPException(
        text=web.json_response({"error": code, "message": message}).text,
        content_type="application/json",
        headers=kept,
    )
    converted.set_status(exc.status, exc.reason)
    return converted


async def healthz(request: web.Request) -> web.Response:
    live = request.app[CONFIG]
    database = "ok"
    try:
        # Within the webhooks' read budget: a stalled database must not stall the probe.
        await request.app[TICKETS].budget.read(_ping(request.app[STORE].reads))
    except TimeoutError:
        log.warning("health_database_slow", budget_s=request.app[TICKETS].budget.read_s)
        database = "unreachable"
    except Exception:
        log.exception("health_database_failed")
        database = "unreachable"
    if database == "ok" and not request.app[TICKETS].ready:
        database = "schema-pending"  # it answers again; the schema is checked in a moment
    redis = await request.app[SHARED].check()
    healthy = database == "ok" and redis != "unreachable" and not live.errors
    body = {
        "status": "ok" if healthy else "degraded",
        "config": {
            "digest": live.current.digest,
            "errors": live.errors,
            "warnings": list(live.current.warnings),
        },
        "database": database,
        "redis": redis,
        # Ticket writes kept on this machine until the database takes them (store/spool.py).
        "spool": {
            "depth": request.app[TICKETS].spool.depth(),
            "set_aside": request.app[TICKETS].spool.set_aside_count(),
        },
    }
    return web.json_response(body)


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def list_tickets(request: web.Request) -> web.Response:
    q = request.query
    zone = request.app[CONFIG].current.plan.hours.zone
    due: DueState | None = None
    match q.get("due") or None:
        case "overdue" | "24h" as asked:
            due = asked
        case None:
            pass
        case _:
            raise error(web.HTTPBadRequest, "invalid-parameter", "due must be overdue or 24h")
    query = TicketQuery(
        status=q.get("status") or None,
        specialty=q.get("specialty") or None,
        call_sid=q.get("call_sid") or None,
        created_from=_moment(q.get("from"), zone, "from"),
        created_to=_moment(q.get("to"), zone, "to", end_of_day=True),
        limit=_int(q.get("limit"), 50, "limit"),
        offset=_int(q.get("offset"), 0, "offset"),
        department=q.get("department") or None,
        where=(visible_to(request[CALLER]),)
        + ((due_condition(due, request.app[CLOCK]()),) if due else ()),
    )
    found, total = await request.app[STORE].search(query)
    return web.json_response(
        {
            "tickets": found,
            "total": total,
            "limit": max(1, min(query.limit, MAX_PAGE)),  # the page size the store used
            "offset": query.offset,
        }
    )


async def get_ticket(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    ticket = await request.app[STORE].get(number)
    if ticket is None or not request[CALLER].may_see(ticket["department"]):
        raise error(web.HTTPNotFound, "ticket-not-found", f"no ticket {number}")
    return web.json_response(ticket, headers={"ETag": f'"{ticket["version"]}"'})


def _int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise error(web.HTTPBadRequest, "invalid-parameter", f"{name} must be a whole number")
    return int(raw)


def _moment(raw: str | None, zone: Any, name: str, *, end_of_day: bool = False) -> datetime | None:
    """A date (whole local day) or an ISO date-time; `to` dates include the whole day."""
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime.combine(day, time(0, 0), tzinfo=zone)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(raw)
    except (ValueError, OverflowError):  # not a date; or the day after 9999-12-31
        raise error(
            web.HTTPBadRequest,
            "invalid-parameter",
            f"{name} must be a date (YYYY-MM-DD) or an ISO date-time",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


async def list_agents(request: web.Request) -> web.Response:
    configured = request.app[CONFIG].current.staffing.agents
    everyone = await directory(request)
    states = await request.app[AGENTS].states()
    return web.json_response(
        {
            "agents": [
                {
                    "id": agent.id,
                    "name": agent.name,
                    "answers_on": agent.answers_on,
                    "desks": {d: level.value for d, level in agent.desks.items()},
                    "state": states[agent.id].state.value if agent.id in states else "offline",
                    "since": states[agent.id].since.isoformat() if agent.id in states else None,
                    "defined_in": "agents.yaml" if agent.id in configured else "api",
                }
                for agent in everyone.values()
            ]
        }
    )


async def set_agent_state(request: web.Request) -> web.Response:
    """A supervisor sets an agent away, ready or offline (on-call and wrap-up come from calls)."""
    agent_id = request.match_info["agent"]
    if agent_id not in await directory(request):
        raise error(web.HTTPNotFound, "agent-not-found", f"no agent {agent_id}")
    body = await _json(request)
    settable = {AgentState.AWAY, AgentState.READY, AgentState.OFFLINE}
    try:
        state = AgentState(str(body.get("state")))
        if state not in settable:
            raise ValueError(state)
    except ValueError:
        raise error(
            web.HTTPBadRequest, "invalid-parameter", "state must be one of: away, ready, offline"
        ) from None
    await request.app[AGENTS].set_state(agent_id, state, request.app[CLOCK](), "set by ops API")
    return web.json_response({"id": agent_id, "state": state.value})


async def set_outcome(request: web.Request) -> web.Response:
    """The outcome of a ticket's call, when the agent could not key it on the phone."""
    number = request.match_info["number"]
    ticket = await request.app[STORE].get(number)
    if ticket is None:
        raise error(web.HTTPNotFound, "ticket-not-found", f"no ticket {number}")
    body = await _json(request)
    try:
        outcome = Outcome(str(body.get("outcome")))
    except ValueError:
        allowed = ", ".join(o.value for o in Outcome)
        raise error(
            web.HTTPBadRequest, "invalid-parameter", f"outcome must be one of: {allowed}"
        ) from None
    change = TicketChange(note=f"outcome {outcome.value} set by ops API", outcome=outcome.value)
    call = CallRef(ticket["call_sid"], ticket["caller"], ticket["called"])
    await request.app[STORE].apply(call, [change], request.app[CLOCK]())
    return web.json_response({"number": number, "outcome": outcome.value})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise error(web.HTTPBadRequest, "invalid-json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise error(web.HTTPBadRequest, "invalid-json", "the body must be a JSON object")
    return body


class AgentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=60)]
    answers_on: AgentPhone
    pin: Annotated[str, Field(pattern=r"^[0-9]{4,8}$")]
    desks: Annotated[dict[str, Literal["primary", "backup"]], Field(min_length=1)]


async def put_agent(request: web.Request) -> web.Response:
    """Add or change an agent (not one of agents.yaml: those are changed in the file)."""
    agent_id = request.match_info["agent"]
    if not agent_id.isdigit() or not 2 <= len(agent_id) <= 8:
        raise error(web.HTTPBadRequest, "invalid-parameter", "an agent id is 2 to 8 digits")
    if agent_id in request.app[CONFIG].current.staffing.agents:
        raise error(
            web.HTTPConflict,
            "agent-in-config",
            f"agent {agent_id} is defined in agents.yaml; change it there",
        )
    try:
        given = AgentInput.model_validate(await _json(request))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise error(web.HTTPBadRequest, "invalid-parameter", problems) from None
    desks = request.app[CONFIG].current.plan.specialties
    unknown = sorted(set(given.desks) - set(desks))
    if unknown:
        raise error(
            web.HTTPBadRequest, "invalid-parameter", f"unknown specialty: {', '.join(unknown)}"
        )
    pin_hash = await asyncio.to_thread(hash_pin, given.pin)
    agent = Agent(
        agent_id,
        given.name,
        given.answers_on,
        pin_hash,
        {desk: DeskLevel(level) for desk, level in given.desks.items()},
    )
    await request.app[AGENTS].save_agent(agent, request.app[CLOCK]())
    log.info("agent_saved", agent=agent_id, desks=sorted(given.desks))
    return web.json_response(
        {
            "id": agent_id,
            "name": agent.name,
            "desks": {d: lv.value for d, lv in agent.desks.items()},
        }
    )


async def delete_agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["agent"]
    if agent_id in request.app[CONFIG].current.staffing.agents:
        raise error(
            web.HTTPConflict,
            "agent-in-config",
            f"agent {agent_id} is defined in agents.yaml; remove it there",
        )
    if not await request.app[AGENTS].delete_agent(agent_id):
        raise error(web.HTTPNotFound, "agent-not-found", f"no agent {agent_id}")
    return web.json_response({"id": agent_id, "deleted": True})
