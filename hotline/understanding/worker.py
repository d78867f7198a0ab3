"""`hotline speech-worker`: recognition for webhook servers that run with HOTLINE_SPEECH=queue.

One process per machine takes jobs from the queue on Redis (arq) and decodes them on a
`SpeechPool` of its own: `workers` processes (one per core by default), models loaded once
and kept warm, so no decoder ever blocks the event loop that talks to Redis. It takes as
many jobs at once as it has processes; more machines, more capacity.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import structlog
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix
from arq.worker import Worker, func

from hotline.config import LoadedConfig
from hotline.settings import Settings
from hotline.understanding.queue import RECOGNISE_JOB
from hotline.understanding.understander import speech_engines
from speech.examples import grammar_texts
from speech.pool import Heard, SpeechPool, SpeechProblem
from speech.recognizer import Passes

log = structlog.get_logger("hotline.speech")

POOL = "speech_pool"
# A job without a deadline of its own (not enqueued by QueuedSpeech) gets this long.
UNBOUNDED_JOB_S = 60.0
# Results are read within a poll of being written; nobody reads them after the deadline.
KEEP_RESULT_S = 10


async def recognise(
    ctx: dict[str, Any],
    raw: bytes,
    lang: str,
    grammar: tuple[str, ...],
    passes: Passes = "both",
) -> Heard:
    """One recording of a waiting caller, within what is left of the caller's deadline."""
    pool: SpeechPool = ctx[POOL]
    redis: ArqRedis = ctx["redis"]
    started = time.perf_counter()
    # The job's key expires at the caller's deadline, on Redis's own clock (no skew
    # between machines): what is left of it is this job's time.
    left_ms = int(await redis.pttl(job_key_prefix + ctx["job_id"]))
    if left_ms == -2 or 0 <= left_ms < 50:
        heard = Heard(None, "speech-timeout", "the caller's deadline passed in the queue")
    else:
        budget_s = left_ms / 1000 if left_ms > 0 else UNBOUNDED_JOB_S
        try:
            heard = Heard(await pool.recognise(raw, lang, grammar, budget_s, passes))
        except SpeechProblem as exc:
            heard = Heard(None, exc.problem, exc.detail)
    log.info(
        "speech_job",
        job=ctx["job_id"],
        lang=lang,
        passes=passes,
        left_ms=left_ms,
        problem=heard.problem,
        seconds=round(time.perf_counter() - started, 3),
    )
    return heard


def speech_worker(settings: Settings, config: LoadedConfig, workers: int) -> Worker:
    """The arq worker of `settings.speech_queue`; `run()` it."""
    engines = speech_engines(settings.models_dir, config)
    warm = {lang: grammar_texts(config.examples, lang) for lang in ("zh", "en")}

    async def start(ctx: dict[str, Any]) -> None:
        pool = SpeechPool(engines, workers, warm)
        await pool.warm_up()  # before the first job is taken, not on a caller's time
        ctx[POOL] = pool
        log.info(
            "speech_worker_ready",
            pid=os.getpid(),
            queue=settings.speech_queue,
            workers=workers,
            zh=str(engines.zh_model),
            en=str(engines.en_model or "pocketsphinx"),
        )

    async def stop(ctx: dict[str, Any]) -> None:
        pool = ctx.get(POOL)
        if isinstance(pool, SpeechPool):
            pool.close()
        log.info("speech_worker_stopped", queue=settings.speech_queue)

    # arq binds the worker to the current event loop when it is made.
    asyncio.set_event_loop(asyncio.new_event_loop())
    return Worker(
        functions=[func(recognise, name=RECOGNISE_JOB, max_tries=1)],
        queue_name=settings.speech_queue,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=start,
        on_shutdown=stop,
        max_jobs=workers,
        # Bounded by the deadline inside the job; this only frees a slot after a bug.
        job_timeout=UNBOUNDED_JOB_S + 10,
        keep_result=KEEP_RESULT_S,
        max_tries=1,  # a job retried after a crash would be past its caller's deadline
        poll_delay=0.05,  # a new job waits at most this long for a free worker to see it
        health_check_interval=10,
        log_results=False,  # the transcript is the caller's words: `speech_job` says enough
    )
