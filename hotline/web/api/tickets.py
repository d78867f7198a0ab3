"""`/api/tickets`: list, read, and the outcome of a ticket's call."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from casework.actions import DueState
from hotline.store.tickets import MAX_PAGE, CallRef, TicketQuery
from hotline.web.api.access import CALLER
from hotline.web.api.errors import error, json_body
from hotline.web.keys import CLOCK, CONFIG, STORE, TICKETS
from ivr.actions import TicketChange
from routing.acd import Outcome


async def list_tickets(request: web.Request) -> web.Response:
    q = request.query
    zone = request.config_dict[CONFIG].current.plan.hours.zone
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
        created_from=moment(q.get("from"), zone, "from"),
        created_to=moment(q.get("to"), zone, "to", end_of_day=True),
        limit=_int(q.get("limit"), 50, "limit"),
        offset=_int(q.get("offset"), 0, "offset"),
        department=q.get("department") or None,
        viewer=request[CALLER],
        due=due,
        now=request.config_dict[CLOCK](),
    )
    found, total = await request.config_dict[STORE].search(query)
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
    ticket = await request.config_dict[STORE].get(number)
    if ticket is None or not request[CALLER].may_see(ticket["department"]):
        raise error(web.HTTPNotFound, "ticket-not-found", f"no ticket {number}")
    return web.json_response(ticket, headers={"ETag": f'"{ticket["version"]}"'})


async def set_outcome(request: web.Request) -> web.Response:
    """The outcome of a ticket's call, when the agent could not key it on the phone."""
    number = request.match_info["number"]
    ticket = await request.config_dict[STORE].get(number)
    if ticket is None:
        raise error(web.HTTPNotFound, "ticket-not-found", f"no ticket {number}")
    body = await json_body(request)
    try:
        outcome = Outcome(str(body.get("outcome")))
    except ValueError:
        allowed = ", ".join(o.value for o in Outcome)
        raise error(
            web.HTTPBadRequest, "invalid-parameter", f"outcome must be one of: {allowed}"
        ) from None
    change = TicketChange(note=f"outcome {outcome.value} set by ops API", outcome=outcome.value)
    call = CallRef(ticket["call_sid"], ticket["caller"], ticket["called"])
    await request.config_dict[TICKETS].set_outcome(call, change, request.config_dict[CLOCK]())
    return web.json_response({"number": number, "outcome": outcome.value})


def _int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise error(web.HTTPBadRequest, "invalid-parameter", f"{name} must be a whole number")
    return int(raw)


def moment(raw: str | None, zone: Any, name: str, *, end_of_day: bool = False) -> datetime | None:
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
