"""The edge of the metrics: timing every request, counting what the call flow did, and
`GET /metrics` for Prometheus.

Who may scrape: a scraper on the same host or the private network without a secret (the
figures carry no phone number, ticket or transcript, and a scraper's config is simpler
without one), anyone else only with the ops token. A request that came through a proxy
(it carries Forwarded, X-Forwarded-For or X-Real-IP) is not taken as local, since a
TLS-terminating proxy on the same host would otherwise make the whole internet look like
loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Sequence
from typing import Any

import structlog
from aiohttp import web

from casework.tickets import TicketStatus
from hotline.auth.tokens import bearer, is_admin
from hotline.observability.metrics import EXPOSITION_CONTENT_TYPE, Metrics
from hotline.store.jobs import JobStore
from hotline.web.keys import JOBS, METRICS, SETTINGS
from ivr.actions import Action, AgentHook, Gather, Hook, Record, Redirect, TicketChange
from ivr.events import Described, Event
from ivr.model import IvrPlan
from ivr.state import CallState
from routing.queue_router import QueueExit

log = structlog.get_logger("hotline.metrics")

# The database has this long to count the jobs; a scrape never waits on a dead one longer.
JOBS_READ_TIMEOUT_S = 2.0
_HOOKS = frozenset(h.value for h in Hook) | frozenset(h.value for h in AgentHook)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_FORWARDING = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def route_label(request: web.Request) -> str:
    """The route's template, never the URL as sent: `/twilio/{hook}` names its hook when
    it is one of the flow's, so the series stay bounded."""
    info = request.match_info
    resource = info.route.resource
    if resource is None:
        return "unmatched"  # 404 and 405 answered by the router itself
    hook = info.get("hook")
    if hook is not None and hook in _HOOKS:
        return resource.canonical.replace("{hook}", hook)
    return resource.canonical


@web.middleware
async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every request into `hotline_http_request_duration_seconds`, whatever its answer."""
    started = time.perf_counter()
    status = 500
    try:
        response: web.StreamResponse = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away first
        raise
    finally:
        method = request.method if request.method in _METHODS else "other"
        request.config_dict[METRICS].request_done(
            route_label(request), method, status, time.perf_counter() - started
        )


async def scrape(request: web.Request) -> web.Response:
    """`GET /metrics`: the text exposition format."""
    if not _may_scrape(request):
        log.warning("metrics_refused", peer=_peer(request))
        raise web.HTTPUnauthorized(
            text='{"error": "unauthorized", "message": "metrics are served to the local '
            'network, or with the ops token"}',
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
    metrics = request.config_dict[METRICS]
    await _read_jobs(request.config_dict.get(JOBS), metrics)
    return web.Response(
        body=metrics.exposition(), headers={"Content-Type": EXPOSITION_CONTENT_TYPE}
    )


async def _read_jobs(jobs: JobStore | None, metrics: Metrics) -> None:
    if jobs is None:
        return
    try:
        counts = await asyncio.wait_for(jobs.counts(), JOBS_READ_TIMEOUT_S)
    except Exception as exc:
        # The database is down: the scrape still answers, with the last figures read.
        log.warning("metrics_jobs_unread", error=type(exc).__name__)
        metrics.callback_jobs_stale()
        return
    metrics.set_callback_jobs(counts)


def _may_scrape(request: web.Request) -> bool:
    token = bearer(request.headers.get("Authorization", ""))
    if token is not None and is_admin(token, request.config_dict[SETTINGS].admin_token):
        return True
    if any(name in request.headers for name in _FORWARDING):
        return False
    return is_local(_peer(request))


def is_local(peer: str | None) -> bool:
    """Loopback or a private network: RFC 1918, link-local, IPv6 unique-local."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Not `is_private`: it also takes in the documentation and benchmarking ranges.
    return any(address in network for network in _LOCAL_NETWORKS)


def _peer(request: web.Request) -> str | None:
    # The socket's own peer, not `request.remote`, which a forwarding middleware may rewrite.
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple | list) and peername:
        return str(peername[0])
    return None


def count_flow(
    metrics: Metrics,
    plan: IvrPlan,
    route: str,
    state: CallState,
    event: Event,
    actions: Sequence[Action],
    outcome: str,
) -> None:
    """What one step of a call did, in counters: its outcome, queue joins and abandons,
    and what became of the caller's words."""
    metrics.call_outcome(route, outcome)
    for action in actions:
        if not isinstance(action, TicketChange):
            continue
        if action.status is TicketStatus.IN_QUEUE and action.queue_desk:
            metrics.queue_joined(_known(plan, action.queue_desk))
        if action.queue_result is QueueExit.HANGUP:
            metrics.queue_abandoned(_desk_of_queue(plan, state))
        if action.choice:
            metrics.classification_answer(_answer(action.choice, route))
    if isinstance(event, Described):
        metrics.classified(_next_step(actions))


def _known(plan: IvrPlan, specialty: str) -> str:
    return specialty if specialty in plan.specialties else "unknown"


def _desk_of_queue(plan: IvrPlan, state: CallState) -> str:
    # The URL says which queue the caller waited in; only a configured one names a desk.
    for specialty in plan.specialties.values():
        if specialty.queue == state.queue:
            return specialty.id
    return _known(plan, state.desk or "")


def _answer(choice: str, route: str) -> str:
    if choice in ("rejected", "menu"):
        return choice
    return "accepted" if route == Hook.CONFIRM.value else "chosen"


def _next_step(actions: Sequence[Action]) -> str:
    for action in actions:
        match action:
            case Gather(target=target) | Redirect(target=target) if target.hook is Hook.CONFIRM:
                return "confirm"
            case Gather(target=target) | Redirect(target=target) if target.hook is Hook.CHOICE:
                return "choose"
            case Record(target=target) if target.hook is Hook.DESCRIBED:
                return "say-again"
            case Gather(target=target) if target.hook is Hook.MENU:
                return "key-menu"
    return "other"
