"""`/api/agents`: the agents' states, and agents added or removed without editing agents.yaml."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casework.phone import parse
from hotline.auth.pins import hash_pin
from hotline.config.schema import AgentPhone
from hotline.web.api.errors import error, json_body
from hotline.web.api.params import is_agent_id
from hotline.web.keys import AGENTS, CLOCK, CONFIG
from hotline.web.staff import directory
from routing.acd import Agent, AgentState, DeskLevel

log = structlog.get_logger("hotline.api")


async def list_agents(request: web.Request) -> web.Response:
    configured = request.config_dict[CONFIG].current.staffing.agents
    everyone = await directory(request)
    states = await request.config_dict[AGENTS].states()
    return web.json_response(
        {
            "agents": [
                {
                    "id": agent.id,
                    "name": agent.name,
                    "answers_on": agent.answers_on,
                    "desks": {d: level.value for d, level in agent.desks.items()},
                    "state": states[agent.id].state.value if agent.id in states else "offline",
                    "since": states[agent.id].since.isoformat() if agent.id in states else None,
                    "defined_in": "agents.yaml" if agent.id in configured else "api",
                }
                for agent in everyone.values()
            ]
        }
    )


async def set_agent_state(request: web.Request) -> web.Response:
    """A supervisor sets an agent away, ready or offline (on-call and wrap-up come from calls)."""
    agent_id = request.match_info["agent"]
    if agent_id not in await directory(request):
        raise error(web.HTTPNotFound, "agent-not-found", f"no agent {agent_id}")
    body = await json_body(request)
    settable = {AgentState.AWAY, AgentState.READY, AgentState.OFFLINE}
    try:
        state = AgentState(str(body.get("state")))
        if state not in settable:
            raise ValueError(state)
    except ValueError:
        raise error(
            web.HTTPBadRequest, "invalid-parameter", "state must be one of: away, ready, offline"
        ) from None
    await request.config_dict[AGENTS].set_state(
        agent_id, state, request.config_dict[CLOCK](), "set by ops API"
    )
    return web.json_response({"id": agent_id, "state": state.value})


class AgentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=60)]
    answers_on: AgentPhone
    pin: Annotated[str, Field(pattern=r"^[0-9]{4,8}$")]
    desks: Annotated[dict[str, Literal["primary", "backup"]], Field(min_length=1)]


async def put_agent(request: web.Request) -> web.Response:
    """Add or change an agent (not one of agents.yaml: those are changed in the file)."""
    agent_id = request.match_info["agent"]
    if not is_agent_id(agent_id):
        raise error(web.HTTPBadRequest, "invalid-parameter", "an agent id is 2 to 8 digits (0-9)")
    if agent_id in request.config_dict[CONFIG].current.staffing.agents:
        raise error(
            web.HTTPConflict,
            "agent-in-config",
            f"agent {agent_id} is defined in agents.yaml; change it there",
        )
    try:
        given = AgentInput.model_validate(await json_body(request))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise error(web.HTTPBadRequest, "invalid-parameter", problems) from None
    desks = request.config_dict[CONFIG].current.plan.specialties
    unknown = sorted(set(given.desks) - set(desks))
    if unknown:
        raise error(
            web.HTTPBadRequest, "invalid-parameter", f"unknown specialty: {', '.join(unknown)}"
        )
    pin_hash = await asyncio.to_thread(hash_pin, given.pin)
    agent = Agent(
        agent_id,
        given.name,
        given.answers_on,
        pin_hash,
        {desk: DeskLevel(level) for desk, level in given.desks.items()},
    )
    await request.config_dict[AGENTS].save_agent(agent, request.config_dict[CLOCK]())
    log.info("agent_saved", agent=agent_id, desks=sorted(given.desks))
    return web.json_response(
        {
            "id": agent_id,
            "name": agent.name,
            "desks": {d: lv.value for d, lv in agent.desks.items()},
        }
    )


async def delete_agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["agent"]
    if not is_agent_id(agent_id):  # no agent has such an id: not one to ask the store for
        raise error(web.HTTPNotFound, "agent-not-found", f"no agent {agent_id}")
    if agent_id in request.config_dict[CONFIG].current.staffing.agents:
        raise error(
            web.HTTPConflict,
            "agent-in-config",
            f"agent {agent_id} is defined in agents.yaml; remove it there",
        )
    if not await request.config_dict[AGENTS].delete_agent(agent_id):
        raise error(web.HTTPNotFound, "agent-not-found", f"no agent {agent_id}")
    return web.json_response({"id": agent_id, "deleted": True})


async def lift_lockout(request: web.Request) -> web.Response:
    """A supervisor lifts an agent's PIN lockout (hotline/auth/lockout.py) before it expires."""
    agent_id = request.match_info["agent"]
    agent = (await directory(request)).get(agent_id)
    if agent is None:
        raise error(web.HTTPNotFound, "agent-not-found", f"no agent {agent_id}")
    # The agent's own phone is freed too; a number that guessed at the agent's PIN is not.
    own = parse(agent.answers_on)
    lifted = await request.config_dict[AGENTS].lift_lockout(agent_id, own.e164 if own else None)
    log.info("agent_pin_lockout_lifted", agent=agent_id, failures=lifted)
    return web.json_response({"id": agent_id, "failures_lifted": lifted})
