"""The line at a glance, for supervisors: who waits at which desk, which agents are free."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hotline.store.tables import tickets
from hotline.web.keys import AGENTS, CLOCK, CONFIG, STORE
from routing.acd import AgentState


async def live(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(request))


async def snapshot(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG].current
    plan = config.plan
    now = request.app[CLOCK]()
    waiting = await request.app[AGENTS].waiting_now(now)
    states = await request.app[AGENTS].states()
    desks: dict[str, dict[str, Any]] = {
        desk_id: {
            "id": desk_id,
            "name": dict(desk.name),
            "waiting": 0,
            "longest_wait_s": 0,
            "agents": {
                s.value: 0 for s in (AgentState.READY, AgentState.ON_CALL, AgentState.WRAP_UP)
            },
        }
        for desk_id, desk in plan.specialties.items()
    }
    for member in waiting:
        desk = desks.get(member["desk"])
        if desk is not None:
            desk["waiting"] += 1
            waited = int((now - member["joined_at"]).total_seconds())
            desk["longest_wait_s"] = max(desk["longest_wait_s"], waited)
    agents = []
    for agent in config.staffing.agents.values():
        status = states.get(agent.id)
        state = status.state if status else AgentState.OFFLINE
        for desk_id in agent.desks:
            counts = desks.get(desk_id, {}).get("agents", {})
            if state.value in counts:
                counts[state.value] += 1
        agents.append(
            {
                "id": agent.id,
                "name": agent.name,
                "state": state.value,
                "since": status.since.isoformat() if status else None,
                "desks": {d: level.value for d, level in agent.desks.items()},
            }
        )
    busiest = sorted(desks.values(), key=lambda d: (-d["waiting"], -d["longest_wait_s"], d["id"]))
    return {
        "at": now.isoformat(),
        "desks": busiest,
        "agents": agents,
        "calls_per_hour": await _calls_per_hour(request, now),
    }


async def _calls_per_hour(request: web.Request, now: datetime) -> list[int]:
    zone = request.app[CONFIG].current.plan.hours.zone
    start = datetime.combine(now.astimezone(zone).date(), time(0, 0), tzinfo=zone)
    query = (
        select(tickets.c.created_at)
        .where(tickets.c.created_at >= start)
        .where(tickets.c.created_at < start + timedelta(days=1))
    )
    hours = [0] * 24
    async with request.app[STORE].engine.connect() as conn:
        for (created,) in (await conn.execute(query)).all():
            hours[created.astimezone(zone).hour] += 1
    return hours
