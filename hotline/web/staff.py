"""The agents a request may deal with: agents.yaml's and those added through the ops API."""

from __future__ import annotations

from aiohttp import web

from hotline.web.keys import AGENTS, CONFIG
from routing.acd import Agent


async def directory(request: web.Request) -> dict[str, Agent]:
    return await request.config_dict[AGENTS].directory(
        request.config_dict[CONFIG].current.staffing.agents
    )
