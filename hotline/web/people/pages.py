"""A people's page: a session for the request, its form token checked, and a clear page
when the session store or the database is away.

Only the people's routes are wrapped (`add_page`): the webhooks (signed by Twilio) and
the API (bearer tokens) authenticate each request by itself, never by a cookie, and never
pass through the session layer, nor does /healthz, /metrics or a static file.
"""

from __future__ import annotations

import functools

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from hotline.store.durable import unreachable
from hotline.store.shared import UNREACHABLE
from hotline.web.keys import SESSION_LAYER
from hotline.web.people import csrf
from hotline.web.people.render import refuse

log = structlog.get_logger("hotline.people")


def add_page(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """A route of the people's pages, its handler behind the session layer."""
    app.router.add_route(method, path, functools.partial(_page, handler))


async def _page(handler: Handler, request: web.Request) -> web.StreamResponse:
    layer = request.config_dict[SESSION_LAYER]
    try:
        response: web.StreamResponse = await layer(
            request, functools.partial(csrf.checked, handler)
        )
    except web.HTTPException:
        raise
    except UNREACHABLE as error:
        log.warning("sessions_unavailable", path=request.path, error=type(error).__name__)
        return refuse(
            request,
            503,
            "sessions-unavailable",
            "登录服务暂时不可用，请稍后再试。",
            "Signing in is unavailable for a moment; please try again shortly.",
        )
    except Exception as error:
        if not unreachable(error):
            raise
        log.warning("page_database_unreachable", path=request.path, error=type(error).__name__)
        return refuse(
            request,
            503,
            "storage-unavailable",
            "数据库暂时不可用，请稍后再试。",
            "The database cannot answer now; please try again shortly.",
        )
    return response
