"""The `/twilio` sub-application: every voice webhook, behind the signature check.

Its middleware is the one door of a webhook: the form read and signed, parsed into a
`Webhook` for the handler; whatever the handling raises, Twilio gets TwiML, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from hotline.twilio.twiml import empty_twiml
from hotline.twilio.urls import OUTBOUND_STATUS
from hotline.twilio.webhooks import signed_url, verified
from hotline.web import live
from hotline.web.keys import SETTINGS, SIGNATURES, WEBHOOK
from hotline.web.voice import agents, calls, outbound

log = structlog.get_logger("hotline.web")


def voice_app() -> web.Application:
    app = web.Application(middlewares=[guard, live.announce_changes])
    app.router.add_post("/voice", calls.voice)
    app.router.add_post("/status", calls.status)
    app.router.add_post("/agent", agents.agent_call)
    app.router.add_post("/agent-status", agents.agent_status)
    app.router.add_post(r"/{hook:agent-[a-z]+}", agents.agent_hook)
    app.router.add_post("/outbound", outbound.answered)
    app.router.add_post("/outbound-key", outbound.key)
    app.router.add_post(f"/{OUTBOUND_STATUS}", outbound.ended)
    app.router.add_post("/{hook}", calls.flow_hook)
    return app


# What a webhook answers when its handling failed, by its handler: a caller is sent on
# to a desk (calls.rescue_response, the default); an agent is never put in a callers'
# queue, nor is an enterprise the hotline called; a status callback runs no TwiML.
_RESCUES: dict[Any, Callable[[web.Request], web.Response]] = {
    agents.agent_call: agents.rescue_response,
    agents.agent_hook: agents.rescue_response,
    agents.agent_status: lambda _request: empty_twiml(),
    outbound.answered: outbound.rescue_response,
    outbound.key: outbound.rescue_response,
    calls.status: lambda _request: empty_twiml(),
    outbound.ended: lambda _request: empty_twiml(),
}


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """A valid signature first; then no exception escapes as a 500."""
    settings = request.config_dict[SETTINGS]
    try:
        webhook = await verified(request, request.config_dict[SIGNATURES], settings.public_url)
    except web.HTTPForbidden:
        log.warning(
            "bad_signature", path=request.path, url=signed_url(request, settings.public_url)
        )
        raise
    request[WEBHOOK] = webhook
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except Exception:
        log.exception("webhook_failed", path=request.path, call_sid=webhook.call_sid)
        rescue = _RESCUES.get(request.match_info.handler, calls.rescue_response)
        return rescue(request)
