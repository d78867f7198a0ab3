"""The application factory: typed settings in, a ready aiohttp app out.

Resources (database engine, config watcher) are opened and closed in one cleanup context;
all routes are listed in `_routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from multidict import MultiDict
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.callbacks.dispatcher import Dispatcher
from hotline.config import LoadedConfig
from hotline.config.live import LiveConfig
from hotline.observability.metrics import Metrics
from hotline.settings import Settings
from hotline.store.agents import AgentStore
from hotline.store.casework import CaseStore
from hotline.store.durable import DurableTickets, unreachable
from hotline.store.engine import make_engine, upgrade
from hotline.store.jobs import JobStore
from hotline.store.shared import open_shared
from hotline.store.tickets import TicketStore
from hotline.twilio.recordings import RecordingFetcher
from hotline.twilio.rest import TwilioDialer
from hotline.twilio.twiml import TwimlDocuments
from hotline.twilio.webhooks import SignatureCheck
from hotline.understanding.queue import QueuedSpeech
from hotline.understanding.understander import ClassifierCache, Understander, speech_engines
from hotline.understanding.voicemail import VoicemailReader
from hotline.web import limits, live, metrics
from hotline.web.api import casework, openapi
from hotline.web.api import handlers as api
from hotline.web.api.kpi import get_kpi
from hotline.web.keys import (
    AGENTS,
    CASEWORK,
    CLASSIFIERS,
    CLOCK,
    CONFIG,
    DIALER,
    DISPATCHER,
    JOBS,
    LIVE_READS,
    METRICS,
    SETTINGS,
    SHARED,
    SIGNATURES,
    STORE,
    TICKETS,
    TWIML_DOCUMENTS,
    UNDERSTANDER,
    VOICEMAILS,
    Clock,
)
from hotline.web.live_reads import SharedReads
from hotline.web.voice import agents, calls, outbound
from speech.classifier import SpecialtyClassifier
from speech.examples import grammar_texts
from speech.pool import SpeechPool
from speech.service import SpeechService

log = structlog.get_logger("hotline.web")
STOP_WAIT_S = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_app(
    settings: Settings,
    config: LoadedConfig,
    *,
    clock: Clock = utc_now,
    classifier: SpecialtyClassifier | None = None,
) -> web.Application:
    """The whole server. `classifier`: one already trained on `config`'s examples."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            metrics.timing,
            twilio_guard,
            api.require_token,
            limits.api_rate_limit,
            live.announce_changes,
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TWIML_DOCUMENTS] = TwimlDocuments()
    app[LIVE_READS] = SharedReads(fresh_s=live.MIN_GAP_S)
    app[CONFIG] = LiveConfig(config)
    app[CLOCK] = clock
    app[SIGNATURES] = SignatureCheck(settings.twilio_auth_token, settings.twilio_webhook_shared_key)
    app[CLASSIFIERS] = ClassifierCache(config, classifier)
    app.cleanup_ctx.append(_shared_state)
    app.cleanup_ctx.append(_resources)
    _routes(app)
    return app


def _routes(app: web.Application) -> None:
    app.router.add_post("/twilio/voice", calls.voice)
    app.router.add_post("/twilio/status", calls.status)
    app.router.add_post("/twilio/agent", agents.agent_call)
    app.router.add_post("/twilio/agent-status", agents.agent_status)
    app.router.add_post(r"/twilio/{hook:agent-[a-z]+}", agents.agent_hook)
    app.router.add_post("/twilio/outbound", outbound.answered)
    app.router.add_post("/twilio/outbound-key", outbound.key)
    app.router.add_post("/twilio/outbound-status", outbound.ended)
    app.router.add_post("/twilio/{hook}", calls.flow_hook)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get(openapi.PATH, openapi.openapi)
    app.router.add_get("/metrics", metrics.scrape)
    app.router.add_get("/api/tickets", api.list_tickets)
    app.router.add_get("/api/tickets/{number}", api.get_ticket)
    app.router.add_post("/api/tickets/{number}/outcome", api.set_outcome)
    app.router.add_post("/api/tickets/{number}/actions", casework.act)
    app.router.add_get("/api/agents", api.list_agents)
    app.router.add_put("/api/agents/{agent}/state", api.set_agent_state)
    app.router.add_put("/api/agents/{agent}", api.put_agent)
    app.router.add_delete("/api/agents/{agent}", api.delete_agent)
    app.router.add_get("/api/kpi", get_kpi)
    app.router.add_get("/api/live", live.live)
    app.router.add_get("/api/live/events", live.events)
    app.router.add_get("/live", live.page)


# What a /twilio/ webhook answers when its handling failed, by its handler: a caller is
# sent on to a desk (calls.rescue_response, the default); an agent is never put in a
# callers' queue; a status callback runs no TwiML.
_RESCUES: dict[Any, Callable[[web.Request], web.Response]] = {
    agents.agent_call: agents.rescue_response,
    agents.agent_hook: agents.rescue_response,
    agents.agent_status: lambda _request: calls.empty_twiml(),
    calls.status: lambda _request: calls.empty_twiml(),
    outbound.ended: lambda _request: calls.empty_twiml(),
}


async def _shared_state(app: web.Application) -> AsyncIterator[None]:
    """Redis when `redis_url` is set (an unreachable one is logged and retried, never
    fatal: the process counts and notifies locally meanwhile); else this process alone."""
    settings = app[SETTINGS]
    app[SHARED] = shared = await open_shared(
        settings.redis_url,
        prefix=settings.redis_prefix,
        timeout_s=settings.redis_timeout_s,
        retry_s=settings.redis_retry_s,
    )
    yield
    await shared.close()


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    live = app[CONFIG]
    plan = live.current.plan
    engine = make_engine(settings.database_url)
    migrated = await _upgrade_or_later(engine)
    app[STORE] = TicketStore(
        engine,
        plan.hours.zone,
        plan.default_language,
        calendar=lambda: live.current.plan.calendar,
    )
    app[AGENTS] = AgentStore(engine)
    app[CASEWORK] = CaseStore(engine, plan.hours.zone, calendar=lambda: live.current.plan.calendar)
    app[JOBS] = JobStore(engine)
    app[TICKETS] = DurableTickets.open(
        app[STORE],
        settings.spool_path,
        app[CLOCK],
        write_s=settings.ticket_write_budget_s,
        read_s=settings.database_read_budget_s,
        ready=migrated,
    )
    spool = app[TICKETS].spool
    app[METRICS].set_spool_depth_source(lambda: float(spool.depth()))
    migrating = None
    if not migrated:
        migrating = asyncio.create_task(
            _upgrade_when_reachable(engine, app[TICKETS], settings.spool_replay_every_s)
        )
    replaying = asyncio.create_task(app[TICKETS].run(settings.spool_replay_every_s))
    dispatching = _dispatcher(app)
    due_watch = asyncio.create_task(_warn_due(app, settings.due_sweep_s))
    session = aiohttp.ClientSession()
    pool = await _speech_pool(settings, live.current)
    app[UNDERSTANDER] = Understander(
        RecordingFetcher(
            session,
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.recording_url_prefixes,
        ),
        pool,
        app[CLASSIFIERS],
        metrics=app[METRICS],
    )
    app[VOICEMAILS] = VoicemailReader(app[UNDERSTANDER], app[TICKETS], live, app[CLOCK])
    watcher = asyncio.create_task(live.watch(settings.config_poll_s))
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, live.ask_reload)
    log.info("started", config=live.current.digest, database=engine.url.get_backend_name())
    yield
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.remove_signal_handler(signal.SIGHUP)
    await _stop(watcher, dispatching, due_watch, replaying, migrating)
    await app[DIALER].close()
    await app[TICKETS].close()
    await app[VOICEMAILS].close()
    if pool is not None:
        await pool.aclose()
    await session.close()
    await app[STORE].aclose()
    await engine.dispose()


async def _upgrade_or_later(engine: AsyncEngine) -> bool:
    """The schema brought up to date now; False when the database cannot be reached.

    A process that restarts while its database is away (the outage that the spool is for)
    still starts: calls are answered, their tickets spooled, and the schema is checked
    when the database answers again. A database that answers with an error is a fault
    to fix, and the process does not start.
    """
    try:
        await upgrade(engine)
    except Exception as error:
        if not unreachable(error):
            raise
        log.warning("database_unreachable_at_start", error=type(error).__name__)
        return False
    return True


async def _upgrade_when_reachable(
    engine: AsyncEngine, tickets: DurableTickets, every_s: float
) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await upgrade(engine)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not unreachable(error):
                log.exception("database_upgrade_failed")
            continue
        log.info("database_reachable", spooled=tickets.spool.depth())
        tickets.ready = True
        return


async def _stop(*tasks: asyncio.Task[None] | None) -> None:
    """Cancel the background loops and wait for them, but not forever: a loop that does not
    stop is named in the log, and shutdown goes on."""
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    if not running:
        return
    _, stuck = await asyncio.wait(running, timeout=STOP_WAIT_S)
    for task in stuck:
        log.warning("task_did_not_stop", task=repr(task.get_coro()))


async def _warn_due(app: web.Application, every_s: float) -> None:
    """Log each ticket once as it comes due within 24 h and once as it goes overdue."""
    while True:
        try:
            await app[CASEWORK].warn_due(app[CLOCK]())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("due_sweep_failed")
        await asyncio.sleep(every_s)


def _dispatcher(app: web.Application) -> asyncio.Task[None] | None:
    """The callback and survey dispatcher, when the service may place calls."""
    settings = app[SETTINGS]
    app[DIALER] = TwilioDialer(
        settings.twilio_account_sid, settings.twilio_auth_token, api_base=settings.twilio_api_base
    )
    missing = [
        name
        for name, value in (
            ("HOTLINE_CALLER_ID", settings.caller_id),
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("HOTLINE_PUBLIC_URL", settings.public_url),
        )
        if not value
    ]
    if missing:
        log.warning("callbacks_off", reason=f"not set: {', '.join(missing)}; jobs wait")
        return None
    dispatcher = Dispatcher(
        app[JOBS],
        app[DIALER],
        app[CONFIG],
        app[CLOCK],
        public_url=settings.public_url,
        caller_id=settings.caller_id,
        owner=f"{socket.gethostname()}:{os.getpid()}",
    )
    app[DISPATCHER] = dispatcher
    return asyncio.create_task(dispatcher.run(settings.dispatch_every_s))


async def _speech_pool(settings: Settings, config: LoadedConfig) -> SpeechService | None:
    """Recognition workers, warmed up before the first call; None when speech is off.

    With HOTLINE_SPEECH=queue and a Redis, the workers are `hotline speech-worker`
    processes elsewhere and this server needs no model.
    """
    if settings.speech_workers <= 0:
        log.info("speech_off", reason="no speech workers configured")
        return None
    if settings.speech_mode == "queue":
        if settings.redis_url:
            log.info("speech_on", mode="queue", queue=settings.speech_queue)
            return QueuedSpeech(settings.redis_url, settings.speech_queue)
        log.warning("speech_queue_off", reason="HOTLINE_SPEECH=queue without HOTLINE_REDIS_URL")
    engines = speech_engines(settings.models_dir, config)
    zh = engines.zh_model
    if zh is not None and not (zh / "am" / "final.mdl").is_file():
        log.warning("speech_off", reason=f"no model in {zh}: run `hotline speech fetch-model`")
        return None
    warm = {lang: grammar_texts(config.examples, lang) for lang in ("zh", "en")}
    pool = SpeechPool(engines, settings.speech_workers, warm)
    await pool.warm_up()
    log.info(
        "speech_on",
        mode="local",
        workers=settings.speech_workers,
        zh=str(zh),
        en=str(engines.en_model or "pocketsphinx"),
    )
    return pool


@web.middleware
async def twilio_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every /twilio/ request: a valid signature first; then no exception escapes as a 500."""
    if not request.path.startswith("/twilio/"):
        response: web.StreamResponse = await handler(request)
        return response
    try:
        posted = await request.post()
    except web.HTTPException:
        raise
    except Exception:
        raise web.HTTPBadRequest(text="unreadable form body") from None
    form: MultiDict[str] = MultiDict((k, v) for k, v in posted.items() if isinstance(v, str))
    settings = request.app[SETTINGS]
    url = settings.public_url + request.raw_path if settings.public_url else str(request.url)
    if not request.app[SIGNATURES].valid(url, form, request.headers):
        log.warning("bad_signature", path=request.path, url=url)
        raise web.HTTPForbidden(text="invalid Twilio signature")
    request[calls.FORM] = form
    try:
        response = await handler(request)
        return response
    except web.HTTPException:
        raise
    except Exception:
        log.exception("webhook_failed", path=request.path, call_sid=form.get("CallSid"))
        rescue = _RESCUES.get(request.match_info.handler, calls.rescue_response)
        return rescue(request)
