"""`GET /healthz`: whether this process can serve, and what it is degraded by."""

from __future__ import annotations

import structlog
from aiohttp import web

from hotline.web.keys import CONFIG, SHARED, STORE, TICKETS

log = structlog.get_logger("hotline.api")


async def healthz(request: web.Request) -> web.Response:
    live = request.config_dict[CONFIG]
    database = "ok"
    try:
        # Within the webhooks' read budget: a stalled database must not stall the probe.
        await request.config_dict[TICKETS].budget.read(request.config_dict[STORE].ping())
    except TimeoutError:
        log.warning("health_database_slow", budget_s=request.config_dict[TICKETS].budget.read_s)
        database = "unreachable"
    except Exception:
        log.exception("health_database_failed")
        database = "unreachable"
    if database == "ok" and not request.config_dict[TICKETS].ready:
        database = "schema-pending"  # it answers again; the schema is checked in a moment
    redis = await request.config_dict[SHARED].check()
    healthy = database == "ok" and redis != "unreachable" and not live.errors
    body = {
        "status": "ok" if healthy else "degraded",
        "config": {
            "digest": live.current.digest,
            "errors": live.errors,
            "warnings": list(live.current.warnings),
        },
        "database": database,
        "redis": redis,
        # Ticket writes kept on this machine until the database takes them (store/spool.py).
        "spool": {
            "depth": request.config_dict[TICKETS].spool.depth(),
            "set_aside": request.config_dict[TICKETS].spool.set_aside_count(),
        },
    }
    return web.json_response(body)
