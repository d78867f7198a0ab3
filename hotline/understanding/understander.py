"""From a recording to an Understanding: fetch, recognise off the event loop, classify.

Never raises: whatever goes wrong becomes `Understanding.problem`, and the call flow gives
the caller the key menu instead.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import structlog

from hotline.config import LoadedConfig
from hotline.observability.metrics import Metrics
from hotline.twilio.recordings import FetchProblem, RecordingFetcher
from ivr.events import Recording, Understanding
from routing.tiers import AppealType
from speech.classifier import SpecialtyClassifier
from speech.examples import grammar_texts
from speech.pool import Engines, SpeechProblem
from speech.recognizer import Transcript
from speech.service import SpeechService

log = structlog.get_logger("hotline.speech")


def speech_engines(models_dir: Path, config: LoadedConfig) -> Engines:
    """The recognizers `config/speech.yaml` asks for, in `models_dir`."""
    speech = config.speech
    return Engines(
        zh_model=models_dir / speech.zh_model if speech.zh_model else None,
        en_model=models_dir / speech.en_model if speech.en_model else None,
        vosk_rate=speech.vosk_rate,
        min_s=speech.min_length_s,
        max_s=speech.max_length_s,
    )


class ClassifierCache:
    """The classifier of the config in service; retrained off the loop when it changes."""

    def __init__(self, config: LoadedConfig, trained: SpecialtyClassifier | None = None) -> None:
        self.classifier = trained or SpecialtyClassifier.train(config.examples)
        self.digest = config.digest
        self._training: asyncio.Task[None] | None = None

    def refresh(self, config: LoadedConfig) -> None:
        if config.digest == self.digest or self._training is not None:
            return
        self._training = asyncio.get_running_loop().create_task(self._retrain(config))

    async def _retrain(self, config: LoadedConfig) -> None:
        try:
            trained = await asyncio.to_thread(SpecialtyClassifier.train, config.examples)
            self.classifier, self.digest = trained, config.digest
            log.info("classifier_trained", digest=config.digest, seconds=round(trained.train_s, 2))
        except Exception:
            log.exception("classifier_training_failed", digest=config.digest)
            self.digest = config.digest  # do not retry the same data in a loop
        finally:
            self._training = None


class Understander:
    def __init__(
        self,
        fetcher: RecordingFetcher,
        pool: SpeechService | None,
        classifiers: ClassifierCache,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._pool = pool
        self._classifiers = classifiers
        self._metrics = metrics

    @property
    def available(self) -> bool:
        return self._pool is not None

    async def understand(
        self, recording: Recording, lang: str, config: LoadedConfig, call_sid: str | None
    ) -> Understanding:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.speech.deadline_s
        self._classifiers.refresh(config)
        if self._pool is None:
            return self._failed("no-speech-engine", lang, call_sid, started)
        texts = grammar_texts(config.examples, lang)
        classifier = self._classifiers.classifier
        try:
            raw = await self._fetcher.fetch(recording.url, deadline)
            # The free pass first: when it is clear enough, the caller need not wait for
            # the grammar pass too (each costs about a tenth of the recording's length).
            transcript = await self._pool.recognise(
                raw, lang, texts, max(0.05, deadline - loop.time()), "free"
            )
            result = classifier.classify(transcript.text, lang)
        except (FetchProblem, SpeechProblem) as exc:
            return self._failed(exc.problem, lang, call_sid, started, exc.detail)
        top = result.candidates[0][1] if result.candidates else 0.0
        if top < config.plan.dialogue.understanding.confirm_at and not transcript.grammar:
            try:
                restricted = await self._pool.recognise(
                    raw, lang, texts, max(0.05, deadline - loop.time()), "grammar"
                )
            except SpeechProblem as exc:  # out of time: the free pass is what we have
                log.info("speech_grammar_pass_skipped", call_sid=call_sid, problem=exc.problem)
            else:
                transcript = Transcript(
                    transcript.free,
                    restricted.grammar,
                    transcript.audio_s,
                    transcript.decode_s + restricted.decode_s,
                )
                result = classifier.classify(transcript.text, lang)
        try:
            appeal = AppealType(result.appeal)
        except ValueError:
            appeal = AppealType.UNKNOWN
        seconds = time.perf_counter() - started
        rtf = transcript.decode_s / transcript.audio_s if transcript.audio_s else None
        log.info(
            "speech_understood",
            call_sid=call_sid,
            lang=lang,
            top=list(result.candidates[:1]),
            audio_s=round(transcript.audio_s, 2),
            decode_s=round(transcript.decode_s, 3),
            rtf=round(rtf, 3) if rtf is not None else None,
            seconds=round(seconds, 3),
        )
        if self._metrics is not None:
            self._metrics.understood(lang, seconds, rtf)
        return Understanding(
            transcript=transcript.free or transcript.grammar,
            candidates=result.candidates,
            appeal=appeal,
        )

    def _failed(
        self, problem: str, lang: str, call_sid: str | None, started: float, detail: str = ""
    ) -> Understanding:
        seconds = time.perf_counter() - started
        log.warning(
            "speech_not_understood",
            call_sid=call_sid,
            problem=problem,
            detail=detail,
            seconds=round(seconds, 3),
        )
        if self._metrics is not None:
            self._metrics.not_understood(lang, seconds, problem)
        return Understanding("", (), AppealType.UNKNOWN, problem)
