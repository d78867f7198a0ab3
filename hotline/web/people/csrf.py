"""Form tokens: a request that changes something carries its session's token.

The token is kept in the session (server-side) and sent back in each form (`csrf_token`).
Another site can make a
browser post to this one, with its cookie, but cannot read the token to put in the form.
The login form has one too, from a pre-session: without it another site could log a
browser in as someone else.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from hotline.auth.tokens import same_token
from hotline.web.people.render import refuse
from hotline.web.people.sessions import expected_csrf

log = structlog.get_logger("hotline.people")

FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def checked(handler: Handler, request: web.Request) -> web.StreamResponse:
    """`handler`'s answer, when the request is safe or carries its session's token."""
    if request.method in SAFE_METHODS:
        return await handler(request)
    expected = await expected_csrf(request)
    given = (await request.post()).get(FIELD)
    if expected is None or not isinstance(given, str) or not same_token(given, expected):
        log.warning("csrf_refused", path=request.path, session=expected is not None)
        return refuse(
            request,
            403,
            "csrf-failed",
            "表单已过期或并非来自本站。请返回重新打开页面后再试。",
            "The form has expired or did not come from this site. "
            "Go back, reload the page and try again.",
        )
    return await handler(request)
