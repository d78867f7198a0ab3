"""The `/api` sub-application: the ops API, behind bearer tokens and a rate limit."""

from __future__ import annotations

from aiohttp import web

from hotline.web import limits, live
from hotline.web.api import access, agents, casework, kpi, openapi, tickets


def api_app() -> web.Application:
    app = web.Application(
        middlewares=[access.require_token, limits.api_rate_limit, live.announce_changes]
    )
    app.router.add_get(openapi.SUBPATH, openapi.openapi)
    app.router.add_get("/tickets", tickets.list_tickets)
    app.router.add_get("/tickets/{number}", tickets.get_ticket)
    app.router.add_post("/tickets/{number}/outcome", tickets.set_outcome)
    app.router.add_post("/tickets/{number}/actions", casework.act)
    app.router.add_get("/agents", agents.list_agents)
    app.router.add_put("/agents/{agent}/state", agents.set_agent_state)
    app.router.add_delete("/agents/{agent}/lockout", agents.lift_lockout)
    app.router.add_put("/agents/{agent}", agents.put_agent)
    app.router.add_delete("/agents/{agent}", agents.delete_agent)
    app.router.add_get("/kpi", kpi.get_kpi)
    app.router.add_get("/live", live.live)
    app.router.add_get("/live/events", live.events)
    return app
