"""`/api/tickets`: list, read, and the outcome of a ticket's call."""

from __future__ import annotations

from aiohttp import web

from casework.actions import DueState
from hotline.store.tickets import MAX_PAGE, CallRef, TicketQuery
from hotline.web.api.access import CALLER
from hotline.web.api.errors import error, json_body
from hotline.web.api.params import moment, text, ticket_number, whole_number
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
        status=text(q.get("status"), "status"),
        specialty=text(q.get("specialty"), "specialty"),
        call_sid=text(q.get("call_sid"), "call_sid"),
        created_from=moment(q.get("from"), zone, "from"),
        created_to=moment(q.get("to"), zone, "to", end_of_day=True),
        limit=whole_number(q.get("limit"), 50, "limit"),
        offset=whole_number(q.get("offset"), 0, "offset"),
        department=text(q.get("department"), "department"),
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
    number = ticket_number(request)
    ticket = await request.config_dict[STORE].get(number)
    if ticket is None or not request[CALLER].may_see(ticket["department"]):
        raise error(web.HTTPNotFound, "ticket-not-found", f"no ticket {number}")
    return web.json_response(ticket, headers={"ETag": f'"{ticket["version"]}"'})


async def set_outcome(request: web.Request) -> web.Response:
    """The outcome of a ticket's call, when the agent could not key it on the phone."""
    number = ticket_number(request)
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
