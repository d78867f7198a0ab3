"""Recognition by `hotline speech-worker` processes, through a job queue on Redis (arq).

A webhook server in this mode (`HOTLINE_SPEECH=queue`) loads no model: it puts the recording
on the queue with its deadline and waits for whichever speech worker is free. A job lives
only as long as its caller waits: it expires in Redis at the deadline (so a worker that
comes back late never starts it), and a webhook that gives up removes it at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta

import structlog
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from arq.jobs import ResultNotFound
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from speech.pool import Heard, SpeechProblem
from speech.recognizer import Passes, Transcript

log = structlog.get_logger("hotline.speech")

# The worker's job function, by the name jobs carry.
RECOGNISE_JOB = "recognise"
DEFAULT_QUEUE = "hotline:speech"


class QueuedSpeech:
    """`speech.service.SpeechService` over the queue `queue` of the Redis at `redis_url`.

    Connecting is lazy: a server starts without Redis, and while Redis is down each
    recognition fails at once (`speech-queue-unreachable`) and the caller gets the keys.
    """

    def __init__(self, redis_url: str, queue: str = DEFAULT_QUEUE, *, poll_s: float = 0.05):
        self._redis = ArqRedis(
            ConnectionPool.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=2.0),
            default_queue_name=queue,
        )
        self._queue = queue
        # How often the result is looked for: adds at most this to every answer.
        self._poll_s = poll_s
        self._discarding: set[asyncio.Task[None]] = set()

    @property
    def queue(self) -> str:
        return self._queue

    async def recognise(
        self,
        raw: bytes,
        lang: str,
        grammar: Sequence[str],
        timeout_s: float,
        passes: Passes = "both",
    ) -> Transcript:
        job_id = uuid.uuid4().hex
        try:
            async with asyncio.timeout(timeout_s):
                job = await self._redis.enqueue_job(
                    RECOGNISE_JOB,
                    raw,
                    lang,
                    tuple(grammar),
                    passes,
                    _job_id=job_id,
                    _queue_name=self._queue,
                    # Past the caller's deadline the job is useless: never start it.
                    _expires=timedelta(seconds=max(timeout_s, 0.001)),
                )
                if job is None:  # a random id already taken: as good as no answer
                    raise SpeechProblem("speech-failed", f"job {job_id} exists")
                heard = await job.result(poll_delay=self._poll_s)
        except TimeoutError:
            self._discard(job_id)
            raise SpeechProblem(
                "speech-timeout", f"no speech worker answered within {timeout_s:.2f} s"
            ) from None
        except (RedisError, OSError) as exc:
            self._discard(job_id)
            raise SpeechProblem(
                "speech-queue-unreachable", f"{type(exc).__name__}: {exc}"
            ) from None
        except ResultNotFound:
            raise SpeechProblem(
                "speech-job-lost", f"job {job_id} left the queue unanswered"
            ) from None
        except SpeechProblem:
            raise
        except Exception as exc:  # arq re-raises what failed the job (e.g. it expired)
            raise SpeechProblem("speech-failed", f"{type(exc).__name__}: {exc}"[:200]) from None
        if not isinstance(heard, Heard):
            raise SpeechProblem("speech-failed", f"unexpected result {type(heard).__name__}")
        if heard.transcript is None:
            raise SpeechProblem(heard.problem or "speech-failed", heard.detail)
        return heard.transcript

    def _discard(self, job_id: str) -> None:
        """The caller is on the key menu by now: take the job off the queue, off the
        caller's time (it would expire at the deadline anyway)."""
        task = asyncio.get_running_loop().create_task(self._remove(job_id))
        self._discarding.add(task)
        task.add_done_callback(self._discarding.discard)

    async def _remove(self, job_id: str) -> None:
        try:
            async with asyncio.timeout(2.0), self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self._queue, job_id)
                pipe.delete(job_key_prefix + job_id)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            log.info("speech_job_not_removed", job=job_id, error=type(exc).__name__)

    async def aclose(self) -> None:
        if self._discarding:
            await asyncio.wait(self._discarding, timeout=2.0)
        await self._redis.aclose(close_connection_pool=True)
