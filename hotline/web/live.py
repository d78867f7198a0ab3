"""The line at a glance, for supervisors: who waits at which desk, which agents are free."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hotline.store.tables import tickets
from hotline.web.keys import AGENTS, CLOCK, CONFIG, STORE
from hotline.web.staff import directory
from routing.acd import AgentState
from routing.metrics import desk_metrics

PAGE = Path(__file__).resolve().parent / "static" / "live.html"
PUSH_EVERY_S = 1.0
HEARTBEAT_EVERY_S = 15.0


async def live(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(request))


async def page(request: web.Request) -> web.FileResponse:
    """The supervisors' page: a static shell; its data comes from the events below."""
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a snapshot whenever the line changes (checked every second)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx must not hold the stream back
        }
    )
    await response.prepare(request)
    last = ""
    quiet = 0.0
    while True:
        current = await snapshot(request)
        changes = {k: v for k, v in current.items() if k != "at"}
        body = json.dumps(changes, sort_keys=True, ensure_ascii=False)
        try:
            if body != last:
                await response.write(
                    f"data: {json.dumps(current, ensure_ascii=False)}\n\n".encode()
                )
                last, quiet = body, 0.0
            elif quiet >= HEARTBEAT_EVERY_S:
                await response.write(b": still here\n\n")
                quiet = 0.0
        except (ConnectionResetError, RuntimeError):
            break
        await asyncio.sleep(PUSH_EVERY_S)
        quiet += PUSH_EVERY_S
    return response


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
            "today": None,
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
    for agent in (await directory(request)).values():
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
    zone = plan.hours.zone
    day_start = datetime.combine(now.astimezone(zone).date(), time(0, 0), tzinfo=zone)
    stays = await request.app[AGENTS].stays_since(day_start)
    for desk_id, figures in desk_metrics(stays, config.staffing.service_level_s).items():
        if desk_id in desks:
            desks[desk_id]["today"] = asdict(figures)
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
