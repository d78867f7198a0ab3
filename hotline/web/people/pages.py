"""The middleware of the people's pages: a session for the request, its form token checked,
and a clear page when the session store or the database is away.

Which requests are people's: every one but those of `/twilio/` (signed by Twilio) and
`/api/` (bearer tokens). Those two authenticate each request by itself, never by a cookie,
so they load no session and need no form token, and the webhooks never wait on the
session store. A request that loads no session (a static file, /healthz) costs nothing.
"""

from __future__ import annotations

import functools

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from hotline.store.durable import unreachable
from hotline.web.keys import SESSION_LAYER
from hotline.web.people import csrf
from hotline.web.people.render import refuse

log = structlog.get_logger("hotline.people")

NOT_PEOPLES = ("/twilio/", "/api/")


@web.middleware
async def people_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(NOT_PEOPLES):
        return await handler(request)
    layer = request.config_dict[SESSION_LAYER]
    try:
        response: web.StreamResponse = await layer(
            request, functools.partial(csrf.checked, handler)
        )
    except web.HTTPException:
        raise
    except RedisError as error:
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
