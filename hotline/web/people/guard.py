"""`requires`: a people's page for the logged-in people of some roles only.

    @requires(AccountRole.DEPARTMENT)
    async def cases(request: web.Request) -> web.StreamResponse:
        account = request[ACCOUNT]

Nobody logged in: a page asked for (GET) is sent to the login form, which comes back to
it afterwards; anything else answers 401. Logged in with another role: 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlencode

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from hotline.auth.accounts import AccountRole
from hotline.web.keys import ACCOUNT
from hotline.web.people.render import refuse
from hotline.web.people.sessions import current

log = structlog.get_logger("hotline.people")

LOGIN = "/login"


def login_url(next_path: str) -> str:
    return f"{LOGIN}?{urlencode({'next': next_path})}"


def requires(*roles: AccountRole) -> Callable[[Handler], Handler]:
    allowed = frozenset(roles)

    def guard(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            account = await current(request)
            if account is None:
                if request.method in ("GET", "HEAD"):
                    raise web.HTTPSeeOther(login_url(request.path_qs))
                return refuse(
                    request,
                    401,
                    "login-required",
                    "请先登录。",
                    "Please log in first.",
                )
            if account.role not in allowed:
                log.warning("page_forbidden", username=account.username, path=request.path)
                return refuse(
                    request,
                    403,
                    "forbidden",
                    "您的账号无权打开这个页面。",
                    "Your account may not open this page.",
                )
            request[ACCOUNT] = account
            return await handler(request)

        return guarded

    return guard
