"""The API's parameters, read strictly: a value that is not what its parameter holds is the
client's mistake (400 `invalid-parameter`), found here, not a query that fails in the
database and answers 503 as if the storage were away."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from casework.tickets import is_ticket_number
from hotline.web.api.errors import error

# Control characters (NUL among them: PostgreSQL's text cannot hold one) and lone
# surrogates (no UTF-8 encodes one): in no status, desk, department or call id of a ticket.
_NOT_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def ascii_digits(raw: str, max_len: int) -> bool:
    """Only 0-9, 1 to `max_len` of them. Not `str.isdigit()` alone: it also takes
    '²' and '①', which int() refuses, and '٣', which int() reads as 3."""
    return 0 < len(raw) <= max_len and raw.isascii() and raw.isdigit()


def plain_text(raw: str) -> bool:
    return _NOT_TEXT.search(raw) is None


def text(raw: str | None, name: str) -> str | None:
    """A filter's text; None when it is absent or empty."""
    if not raw:
        return None
    if not plain_text(raw):
        raise error(web.HTTPBadRequest, "invalid-parameter", f"{name} holds control characters")
    return raw


def ticket_number(request: web.Request) -> str:
    """The path's ticket number; 404 for one no ticket can have, without asking the store."""
    number = request.match_info["number"]
    if not is_ticket_number(number):
        raise error(web.HTTPNotFound, "ticket-not-found", f"no ticket {number}")
    return number


def is_agent_id(raw: str) -> bool:
    """An agent's id: the 2 to 8 digits an agent keys on the phone to log in."""
    return len(raw) >= 2 and ascii_digits(raw, 8)


def whole_number(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    if not ascii_digits(raw, 9):
        raise error(web.HTTPBadRequest, "invalid-parameter", f"{name} must be a whole number")
    return int(raw)


def moment(raw: str | None, zone: Any, name: str, *, end_of_day: bool = False) -> datetime | None:
    """A date (whole local day) or an ISO date-time; `to` dates include the whole day. The
    moment must have a UTC time (the store keeps UTC): midnight of 0001-01-01 in Beijing
    was still year 0 in UTC."""
    if not raw:
        return None
    try:
        if not plain_text(raw):
            raise ValueError(raw)
        if len(raw) == 10:
            start = datetime.combine(date.fromisoformat(raw), time(0, 0), tzinfo=zone)
            found = start + timedelta(days=1) if end_of_day else start
        else:
            parsed = datetime.fromisoformat(raw)
            found = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
        found.astimezone(UTC)
    except OverflowError:
        raise error(
            web.HTTPBadRequest,
            "invalid-parameter",
            f"{name} is out of range: a moment from 0001-01-01 to 9999-12-31 in UTC",
        ) from None
    except ValueError:
        raise error(
            web.HTTPBadRequest,
            "invalid-parameter",
            f"{name} must be a date (YYYY-MM-DD) or an ISO date-time",
        ) from None
    return found
