"""Rate limits: new calls a minute per caller number, requests a minute per API token.

Counted in fixed one-minute windows of the app's clock, in the shared state (Redis across
processes; this process alone while Redis is off or away).
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from casework.phone import PhoneNumber
from hotline.auth.tokens import bearer
from hotline.store.shared import Window, digest
from hotline.twilio.webhooks import Webhook
from hotline.web.api.access import CALLER
from hotline.web.api.errors import error
from hotline.web.keys import CLOCK, SETTINGS, SHARED

log = structlog.get_logger("hotline.limits")

WINDOW_S = 60


async def caller_over_limit(request: web.Request, webhook: Webhook) -> bool:
    """Whether this new call is one too many from its number in the current minute. A
    retried webhook of a call already counted keeps that call's first answer."""
    limit = request.config_dict[SETTINGS].calls_per_caller_per_min
    number = webhook.caller
    # A withheld or unknown caller is many callers, not one: never limited.
    if limit <= 0 or webhook.call_sid is None or not isinstance(number, PhoneNumber):
        return False
    window = Window.of(request.config_dict[CLOCK](), WINDOW_S)
    rank = await request.config_dict[SHARED].call_rank(
        digest(number.e164), webhook.call_sid, window
    )
    if rank <= limit:
        return False
    log.warning(
        "caller_rate_limited", caller=number, call_sid=webhook.call_sid, calls=rank, limit=limit
    )
    return True


@web.middleware
async def api_rate_limit(request: web.Request, handler: Any) -> web.StreamResponse:
    """Per bearer token, after it was accepted (`require_token` runs first)."""
    limit = request.config_dict[SETTINGS].api_requests_per_token_per_min
    if limit > 0 and CALLER in request:
        token = bearer(request.headers.get("Authorization", "")) or ""
        now = request.config_dict[CLOCK]()
        window = Window.of(now, WINDOW_S)
        used = await request.config_dict[SHARED].count(f"api:{digest(token)}", window)
        if used > limit:
            retry_after = window.remaining_s(now)
            log.warning("api_rate_limited", actor=request[CALLER].actor, path=request.path)
            refused = error(
                web.HTTPTooManyRequests,
                "rate-limited",
                f"more than {limit} requests a minute with this token; "
                f"try again in {retry_after} s",
            )
            refused.headers["Retry-After"] = str(retry_after)
            raise refused
    response: web.StreamResponse = await handler(request)
    return response
