"""Recognition in worker processes, so that no decoder ever runs on the event loop.

Each worker loads the models once (the pool's initializer) and keeps its recognizers; a
webhook awaits its result with a deadline. A worker that dies is replaced with the pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from speech.audio import AudioError, Pcm, decode, split_at_pauses
from speech.recognizer import (
    Passes,
    Recognizer,
    SphinxRecognizer,
    Transcript,
    VoskRecognizer,
)


@dataclass(frozen=True)
class Engines:
    """Which recognizer serves each language (a Vosk model directory, or None)."""

    zh_model: Path | None
    en_model: Path | None = None
    # Decode Vosk at this rate (None: the recording's own); chosen by bench/speech.py.
    vosk_rate: int | None = None
    min_s: float = 1.0
    max_s: float = 60.0

    def build(self) -> dict[str, Recognizer]:
        engines: dict[str, Recognizer] = {}
        if self.zh_model is not None:
            engines["zh"] = VoskRecognizer(self.zh_model, self.vosk_rate)
        if self.en_model is not None:
            engines["en"] = VoskRecognizer(self.en_model, self.vosk_rate)
        else:
            engines["en"] = SphinxRecognizer()
        return engines


@dataclass(frozen=True)
class Heard:
    """A worker's answer: a transcript, or the stable id of what went wrong."""

    transcript: Transcript | None
    problem: str | None = None
    detail: str = ""


class SpeechProblem(Exception):
    def __init__(self, problem: str, detail: str = "") -> None:
        super().__init__(problem, detail)
        self.problem = problem
        self.detail = detail


Part = tuple[int, int]  # (index, count): one of `count` pieces of a recording, cut at pauses

# The models of this worker process, loaded once by `_start_worker` (pool initializer).
_worker_engines: dict[str, Recognizer] = {}
_worker_settings: Engines | None = None


def _start_worker(engines: Engines, warm_grammar: dict[str, tuple[str, ...]]) -> None:
    global _worker_settings
    _worker_settings = engines
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    _worker_engines.update(engines.build())
    # A recognizer's first decode is slow; pay it now, not on a caller's time.
    silence = Pcm(b"\x00\x01" * 8000, 8000)
    for lang, recognizer in _worker_engines.items():
        rate = recognizer.rate or 8000
        recognizer.transcribe(Pcm(silence.data * (rate // 8000), rate), warm_grammar.get(lang, ()))


def _exit_with(parent: int) -> None:
    """A worker whose server was killed outright (SIGKILL, the OOM killer) would wait for
    work forever, holding its models' memory: it leaves when its parent is gone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _recognise(
    raw: bytes,
    lang: str,
    texts: tuple[str, ...],
    passes: Passes = "both",
    part: Part = (0, 1),
) -> Heard:
    settings = _worker_settings
    recognizer = _worker_engines.get(lang)
    if settings is None or recognizer is None:
        return Heard(None, "unknown-language", lang)
    try:
        return Heard(recognise_with(recognizer, settings, raw, texts, passes, part))
    except AudioError as exc:
        return Heard(None, exc.reason, exc.detail)
    except Exception as exc:  # a decoder's or codec's own error: the caller gets the keys
        return Heard(None, "speech-failed", f"{type(exc).__name__}: {exc}"[:200])


def recognise_with(
    recognizer: Recognizer,
    settings: Engines,
    raw: bytes,
    texts: Sequence[str],
    passes: Passes = "both",
    part: Part = (0, 1),
) -> Transcript:
    """Decode one recording: the free pass, the grammar pass (built from the classifier's
    texts), or both; of the whole recording, or of `part` (index, count) of it."""
    rate = recognizer.rate or _native_rate(raw)
    pcm = decode(raw, rate=rate, min_s=settings.min_s, max_s=settings.max_s)
    index, count = part
    pieces = split_at_pauses(pcm, count)
    if index >= len(pieces):
        return Transcript("", "", 0.0, 0.0)  # too short to share: part 0 has it all
    return recognizer.transcribe(pieces[index], tuple(texts), passes)


def joined(lang: str, parts: Sequence[Transcript]) -> Transcript:
    """The transcripts of consecutive parts of one recording as one."""
    glue = "" if lang == "zh" else " "
    return Transcript(
        glue.join(p.free for p in parts if p.free),
        glue.join(p.grammar for p in parts if p.grammar),
        sum(p.audio_s for p in parts),
        sum(p.decode_s for p in parts),
    )


def _native_rate(raw: bytes) -> int:
    # RIFF header: the sample rate is the little-endian uint32 at byte 24.
    rate = int.from_bytes(raw[24:28], "little") if len(raw) >= 28 else 8000
    return rate if rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000) else 16000


class SpeechPool:
    def __init__(
        self,
        engines: Engines,
        workers: int | None = None,
        warm_grammar: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._engines = engines
        self._workers = workers or os.cpu_count() or 1
        self._warm = warm_grammar or {}
        self._executor = self._new_executor()
        self._busy = 0
        self._busy_lock = threading.Lock()  # pool futures complete on the pool's own thread

    @property
    def idle_workers(self) -> int:
        return max(0, self._workers - self._busy)

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process has threads and an event loop.
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._engines, self._warm),
        )

    async def warm_up(self) -> None:
        """Start every worker now (models loaded, recognizers warm), not on the first call."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(
                loop.run_in_executor(self._executor, _recognise, b"", "zh", ())
                for _ in range(self._workers)
            )
        )

    async def recognise(
        self,
        raw: bytes,
        lang: str,
        grammar: Sequence[str],
        timeout_s: float,
        passes: Passes = "both",
    ) -> Transcript:
        """Recognise `raw`. Two idle workers share it (cut at a pause): the answer comes
        sooner. Under load each worker keeps its own caller."""
        parts = 2 if self.idle_workers >= 2 else 1
        try:
            heard = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        self._submit(
                            partial(_recognise, raw, lang, tuple(grammar), passes, (i, parts))
                        )
                        for i in range(parts)
                    )
                ),
                timeout_s,
            )
        except TimeoutError:
            raise SpeechProblem("speech-timeout", f"no transcript within {timeout_s} s") from None
        except BrokenProcessPool:
            self._executor = self._new_executor()
            raise SpeechProblem("speech-worker-died") from None
        transcripts = [h.transcript for h in heard if h.transcript is not None]
        if len(transcripts) < len(heard):
            failed = next(h for h in heard if h.transcript is None)
            raise SpeechProblem(failed.problem or "speech-failed", failed.detail)
        return transcripts[0] if parts == 1 else joined(lang, transcripts)

    def _submit(self, work: partial[Heard]) -> asyncio.Future[Heard]:
        with self._busy_lock:
            self._busy += 1
        future = self._executor.submit(work)
        future.add_done_callback(self._finished)
        return asyncio.wrap_future(future)

    def _finished(self, _: object) -> None:
        with self._busy_lock:
            self._busy -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """`close`, as `speech.service.SpeechService` has it."""
        self.close()
