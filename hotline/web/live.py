"""The line at a glance, for supervisors: who waits at which desk, which agents are free."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import datetime, time
from pathlib import Path
from typing import Any

from aiohttp import web

from hotline.web.keys import (
    AGENTS,
    CLOCK,
    CONFIG,
    LIVE_READS,
    SETTINGS,
    SHARED,
    STORE,
    UNCHANGED,
)
from hotline.web.staff import directory
from routing.acd import AgentState
from routing.queue_stats import desk_metrics

PAGE = Path(__file__).resolve().parent / "static" / "live.html"
HEARTBEAT_EVERY_S = 15.0
MIN_GAP_S = 0.3  # between two reads of one stream


async def live(request: web.Request) -> web.Response:
    return web.json_response(await snapshot(request))


async def page(request: web.Request) -> web.FileResponse:
    """The supervisors' page: a static shell; its data comes from the events below."""
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a snapshot whenever the line changes.

    A change announced by any process (Redis pub/sub, or this process alone) wakes the
    stream at once; the line is also re-read every `live_poll_s`, which catches what no
    notice covers (a Redis outage, waits growing longer) and stays the whole mechanism
    when no notices arrive.
    """
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx must not hold the stream back
        }
    )
    await response.prepare(request)
    changes = request.config_dict[SHARED].changes
    poll_s = request.config_dict[SETTINGS].live_poll_s
    loop = asyncio.get_running_loop()
    last = ""
    written = loop.time()
    while True:
        woken = changes.token()
        current = await request.config_dict[LIVE_READS].snapshot(woken, lambda: snapshot(request))
        read = loop.time()
        body = json.dumps({k: v for k, v in current.items() if k != "at"}, sort_keys=True)
        try:
            if body != last:
                await response.write(
                    f"data: {json.dumps(current, ensure_ascii=False)}\n\n".encode()
                )
                last, written = body, read
            elif read - written >= HEARTBEAT_EVERY_S:
                await response.write(b": still here\n\n")
                written = read
        except (ConnectionResetError, RuntimeError):
            break
        heartbeat_due = written + HEARTBEAT_EVERY_S - loop.time()
        if await changes.wait(woken, max(0.0, min(poll_s, heartbeat_due))):
            # A burst of webhooks makes one read, not one per webhook.
            await asyncio.sleep(max(0.0, read + MIN_GAP_S - loop.time()))
    return response


@web.middleware
async def announce_changes(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every webhook and every API change may change what the live view shows: tell the
    live streams of every process once it is stored."""
    response: web.StreamResponse = await handler(request)
    if request.method != "GET" and not request.get(UNCHANGED, False):
        await request.config_dict[SHARED].announce()
    return response


async def snapshot(request: web.Request) -> dict[str, Any]:
    config = request.config_dict[CONFIG].current
    plan = config.plan
    now = request.config_dict[CLOCK]()
    waiting = await request.config_dict[AGENTS].waiting_now(now)
    states = await request.config_dict[AGENTS].states()
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
    stays = await request.config_dict[AGENTS].stays_since(day_start)
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
    zone = request.config_dict[CONFIG].current.plan.hours.zone
    start = datetime.combine(now.astimezone(zone).date(), time(0, 0), tzinfo=zone)
    return await request.config_dict[STORE].calls_per_hour(start, zone)
