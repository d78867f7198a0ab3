"""Who may call the API: the centre's or a department's bearer token, and what each reaches."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from casework.actions import Caller, Role
from hotline.auth.tokens import bearer, identify
from hotline.web.api import openapi
from hotline.web.api.errors import as_json, error
from hotline.web.keys import CONFIG, SETTINGS

log = structlog.get_logger("hotline.api")


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
    """Every request but the OpenAPI document names its caller; every error is JSON."""
    try:
        if request.path != openapi.PATH:
            request[CALLER] = _caller(request)
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        raise as_json(exc) from None
    except Exception:
        log.exception("api_failed", path=request.path)
        raise error(
            web.HTTPServiceUnavailable,
            "storage-unavailable",
            "the ticket store cannot answer now; calls are still being routed",
        ) from None
    return response


def _caller(request: web.Request) -> Caller:
    token = bearer(request.headers.get("Authorization", ""))
    caller = (
        identify(
            token,
            request.config_dict[SETTINGS].admin_token,
            request.config_dict[CONFIG].current.access,
        )
        if token is not None
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
    return caller
