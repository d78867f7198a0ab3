"""The application factory: typed settings in, a ready aiohttp app out.

Each resource is opened and closed by a cleanup context of its own, in the order listed in
`make_app`: when one fails to start, those already started are closed again. The Twilio
webhooks and the ops API are sub-applications with their own middlewares.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import structlog
from aiohttp import web
from aiohttp_session import session_middleware
from sqlalchemy.ext.asyncio import AsyncEngine

from casework.calendar import WorkCalendar
from hotline.auth.passwords import Passwords
from hotline.callbacks.dispatcher import Dispatcher
from hotline.config import LoadedConfig
from hotline.config.live import LiveConfig
from hotline.observability.metrics import Metrics
from hotline.settings import Settings
from hotline.store.agents import AgentStore
from hotline.store.casework import CaseStore
from hotline.store.durable import TicketWrites, unreachable
from hotline.store.engine import make_engine, upgrade
from hotline.store.jobs import JobStore
from hotline.store.shared import open_shared
from hotline.store.tickets import TicketStore
from hotline.store.users import UserStore
from hotline.twilio.recordings import RecordingFetcher
from hotline.twilio.rest import TwilioRest
from hotline.twilio.signature import SignatureCheck
from hotline.twilio.twiml import TwimlDocuments
from hotline.understanding.queue import QueuedSpeech
from hotline.understanding.understander import ClassifierCache, Understander, speech_engines
from hotline.understanding.voicemail import VoicemailReader
from hotline.web import health, live, metrics
from hotline.web.api.app import api_app
from hotline.web.keys import (
    AGENTS,
    CASEWORK,
    CLASSIFIERS,
    CLOCK,
    CONFIG,
    DIALER,
    DISPATCHER,
    HTTP,
    JOBS,
    LIVE_READS,
    MEMBERS,
    METRICS,
    PASSWORDS,
    SESSION_LAYER,
    SETTINGS,
    SHARED,
    SIGNATURES,
    STORE,
    TICKETS,
    TWIML_DOCUMENTS,
    UNDERSTANDER,
    USERS,
    VOICEMAILS,
    Clock,
)
from hotline.web.live_reads import SharedReads
from hotline.web.people import add_people_pages
from hotline.web.people.sessions import open_storage
from hotline.web.voice.app import voice_app
from speech.classifier import SpecialtyClassifier
from speech.examples import grammar_texts
from speech.pool import SpeechPool
from speech.service import SpeechService

log = structlog.get_logger("hotline.web")
STOP_WAIT_S = 5.0
# The database engine, the factory's own: handlers reach the database through the stores.
ENGINE = web.AppKey("engine", AsyncEngine)


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
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[metrics.timing])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TWIML_DOCUMENTS] = TwimlDocuments()
    app[LIVE_READS] = SharedReads(fresh_s=live.MIN_GAP_S)
    app[CONFIG] = LiveConfig(config)
    app[CLOCK] = clock
    app[SIGNATURES] = SignatureCheck(settings.twilio_auth_token, settings.twilio_webhook_shared_key)
    app[CLASSIFIERS] = ClassifierCache(config, classifier)
    app[PASSWORDS] = Passwords()
    app.cleanup_ctx.extend(
        [
            _shared_state,
            _people_sessions,
            _database,
            _tickets,
            _http_session,
            _understanding,
            _dispatcher,
            _due_watch,
            _config_watch,
        ]
    )
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", metrics.scrape)
    app.router.add_get("/live", live.page)
    app.add_subapp("/twilio", voice_app())
    app.add_subapp("/api", api_app())
    add_people_pages(app)
    return app


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


async def _people_sessions(app: web.Application) -> AsyncIterator[None]:
    """People's sessions: in Redis when `redis_url` is set, so that every process serves
    every person, else in this process. The password checks' stand-in hash is made now,
    not at the first login."""
    storage, redis = open_storage(app[SETTINGS], app[CLOCK])
    app[SESSION_LAYER] = session_middleware(storage)
    await app[PASSWORDS].prepare()
    yield
    if redis is not None:
        await redis.aclose()


async def _database(app: web.Application) -> AsyncIterator[None]:
    """The engine and the stores on it. A database that cannot be reached does not stop
    the start (see `_upgrade_or_later`)."""
    live_config = app[CONFIG]
    plan = live_config.current.plan

    def calendar() -> WorkCalendar:
        return live_config.current.plan.calendar  # asked each time: a reload counts at once

    app[ENGINE] = engine = make_engine(app[SETTINGS].database_url)
    try:
        app[STORE] = TicketStore(engine, plan.hours.zone, plan.default_language, calendar=calendar)
        app[AGENTS] = AgentStore(engine, transactions=app[STORE].transactions)
        app[CASEWORK] = CaseStore(engine, plan.hours.zone, calendar=calendar)
        app[JOBS] = JobStore(engine)
        app[USERS] = UserStore(engine, transactions=app[STORE].transactions)
        yield
    finally:
        if STORE in app:
            await app[STORE].aclose()
        await engine.dispose()


async def _tickets(app: web.Application) -> AsyncIterator[None]:
    """The write port of the call path: the database, or this process's spool while it is
    away; the spool replayed in the background, the schema upgraded when it answers."""
    settings = app[SETTINGS]
    migrated = await _upgrade_or_later(app[ENGINE])
    app[TICKETS] = tickets = TicketWrites.open(
        app[STORE],
        settings.spool_path,
        app[CLOCK],
        write_s=settings.ticket_write_budget_s,
        read_s=settings.database_read_budget_s,
        cases=app[CASEWORK],
        jobs=app[JOBS],
        ready=migrated,
    )
    app[METRICS].set_spool_depth_source(lambda: float(tickets.spool.depth()))
    migrating = None
    if not migrated:
        migrating = asyncio.create_task(
            _upgrade_when_reachable(app[ENGINE], tickets, settings.spool_replay_every_s)
        )
    replaying = asyncio.create_task(tickets.run(settings.spool_replay_every_s))
    yield
    await _stop(migrating, replaying)
    await tickets.close()


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    app[HTTP] = session = aiohttp.ClientSession()
    yield
    await session.close()


async def _understanding(app: web.Application) -> AsyncIterator[None]:
    """Speech recognition (workers warmed up before the first call, or none), and the
    voicemail reader that listens to messages left with no desk."""
    settings = app[SETTINGS]
    live_config = app[CONFIG]
    pool = await _speech_pool(settings, live_config.current)
    try:
        fetcher = RecordingFetcher(
            app[HTTP],
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.recording_url_prefixes,
        )
        app[UNDERSTANDER] = Understander(fetcher, pool, app[CLASSIFIERS], metrics=app[METRICS])
        app[VOICEMAILS] = VoicemailReader(app[UNDERSTANDER], app[TICKETS], live_config, app[CLOCK])
        yield
        await app[VOICEMAILS].close()
    finally:
        if pool is not None:
            await pool.aclose()


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    """Twilio's REST API (placing calls, taking a chosen caller out of a queue for an
    agent), and the callback and survey dispatcher, when the service may place calls."""
    settings = app[SETTINGS]
    app[DIALER] = dialer = TwilioRest(
        settings.twilio_account_sid, settings.twilio_auth_token, api_base=settings.twilio_api_base
    )
    if settings.twilio_account_sid:
        app[MEMBERS] = dialer
    else:
        # The REST API needs the account: without it no agent is connected with a caller.
        log.warning("agents_not_connected", reason="not set: TWILIO_ACCOUNT_SID")
    missing = [
        name
        for name, value in (
            ("HOTLINE_CALLER_ID", settings.caller_id),
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("HOTLINE_PUBLIC_URL", settings.public_url),
        )
        if not value
    ]
    dispatching = None
    if missing:
        log.warning("callbacks_off", reason=f"not set: {', '.join(missing)}; jobs wait")
    else:
        app[DISPATCHER] = dispatcher = Dispatcher(
            app[TICKETS],
            dialer,
            app[CONFIG],
            app[CLOCK],
            public_url=settings.public_url,
            caller_id=settings.caller_id,
            owner=f"{socket.gethostname()}:{os.getpid()}",
        )
        dispatching = asyncio.create_task(dispatcher.run(settings.dispatch_every_s))
    yield
    await _stop(dispatching)
    await dialer.close()


async def _due_watch(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_warn_due(app, app[SETTINGS].due_sweep_s))
    yield
    await _stop(task)


async def _config_watch(app: web.Application) -> AsyncIterator[None]:
    """The config reloaded when its files change, or on SIGHUP."""
    live_config = app[CONFIG]
    watcher = asyncio.create_task(live_config.watch(app[SETTINGS].config_poll_s))
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, live_config.ask_reload)
    log.info(
        "started",
        config=live_config.current.digest,
        database=app[ENGINE].url.get_backend_name(),
    )
    yield
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.remove_signal_handler(signal.SIGHUP)
    await _stop(watcher)


async def _warn_due(app: web.Application, every_s: float) -> None:
    """Log each ticket once as it comes due within 24 h and once as it goes overdue."""
    while True:
        try:
            await app[TICKETS].warn_due(app[CLOCK]())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("due_sweep_failed")
        await asyncio.sleep(every_s)


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
    engine: AsyncEngine, tickets: TicketWrites, every_s: float
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
