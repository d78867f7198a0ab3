"""`POST /api/tickets/{number}/actions`: a department or the centre acts on a ticket."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from casework.actions import ActionForbidden, CaseAction, IllegalAction, InvalidInput
from hotline.store.casework import TicketNotFound, VersionConflict
from hotline.web.api.access import CALLER
from hotline.web.api.errors import error, json_body
from hotline.web.api.params import ascii_digits, ticket_number
from hotline.web.keys import CLOCK, CONFIG, TICKETS


class ActionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: CaseAction
    text: str | None = None
    reason: str | None = None  # the same as text; reads better for return and extend
    department: str | None = None
    days: StrictInt | None = None
    district: str | None = None
    version: Annotated[StrictInt, Field(ge=1)] | None = None


async def act(request: web.Request) -> web.Response:
    number = ticket_number(request)
    try:
        given = ActionInput.model_validate(await json_body(request))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise error(web.HTTPBadRequest, "invalid-parameter", problems) from None
    if given.text is not None and given.reason is not None:
        raise error(web.HTTPBadRequest, "invalid-parameter", "give text or reason, not both")
    config = request.config_dict[CONFIG].current
    if given.department is not None and given.department not in config.departments:
        raise error(
            web.HTTPBadRequest, "invalid-parameter", f"unknown department {given.department!r}"
        )
    if given.district is not None and given.district not in config.districts:
        raise error(web.HTTPBadRequest, "invalid-parameter", f"unknown district {given.district!r}")
    try:
        ticket = await request.config_dict[TICKETS].act(
            number,
            given.action,
            request[CALLER],
            text=given.text if given.text is not None else given.reason,
            department=given.department,
            days=given.days,
            district=given.district,
            expected_version=_if_match(request, given.version),
            at=request.config_dict[CLOCK](),
        )
    except TicketNotFound:
        raise error(web.HTTPNotFound, "ticket-not-found", f"no ticket {number}") from None
    except InvalidInput as exc:
        raise error(web.HTTPBadRequest, "invalid-parameter", str(exc)) from None
    except VersionConflict as exc:
        raise error(web.HTTPConflict, "version-conflict", str(exc)) from None
    except ActionForbidden as exc:
        raise error(web.HTTPForbidden, "forbidden", exc.sentence) from None
    except IllegalAction as exc:
        raise error(web.HTTPConflict, "illegal-action", exc.message(number)) from None
    return web.json_response(ticket, headers={"ETag": f'"{ticket["version"]}"'})


def _if_match(request: web.Request, in_body: int | None) -> int | None:
    """The version the client last read: the body's `version`, or an If-Match header."""
    header = request.headers.get("If-Match")
    if header is None:
        return in_body
    raw = header.strip().removeprefix("W/").strip('"')
    if not ascii_digits(raw, 9):
        raise error(web.HTTPBadRequest, "invalid-parameter", "If-Match must be a ticket version")
    if in_body is not None and in_body != int(raw):
        raise error(
            web.HTTPBadRequest, "invalid-parameter", "If-Match and version name different versions"
        )
    return int(raw)
