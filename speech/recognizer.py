"""Recognizers behind one interface: a free transcript and a grammar-restricted one.

The small Mandarin model is weak on telephone audio, so every utterance is decoded twice:
freely (the transcript kept on the ticket) and against a grammar of the classifier's own
vocabulary, which cannot wander off into words no desk cares about.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from speech.audio import Pcm

UNKNOWN = "[unk]"
CHUNK = 8000  # bytes fed per call: 0.5 s at 8 kHz


@dataclass(frozen=True)
class Transcript:
    free: str
    grammar: str
    audio_s: float
    decode_s: float

    @property
    def text(self) -> str:
        """Both passes together: what the classifier reads."""
        return " ".join(part for part in (self.free, self.grammar) if part)


class Recognizer(Protocol):
    # The sample rate to decode at, given the recording's own (None: keep it).
    rate: int | None

    def knows(self, word: str) -> bool: ...

    def transcribe(self, pcm: Pcm, grammar: Sequence[str]) -> Transcript: ...


def _words(raw: str) -> str:
    return " ".join(w for w in raw.split() if w != UNKNOWN)


class VoskRecognizer:
    """One Vosk model; recognizers are kept per rate and grammar and Reset between uses,
    because a new one pays half a second on its first decode."""

    def __init__(self, model_path: Path, rate: int | None = None) -> None:
        import vosk

        self.rate = rate
        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self._model = vosk.Model(str(model_path))
        self._free: dict[int, Any] = {}
        self._grammar: dict[tuple[int, int], Any] = {}

    def knows(self, word: str) -> bool:
        return bool(self._model.vosk_model_find_word(word) >= 0)

    def transcribe(self, pcm: Pcm, grammar: Sequence[str]) -> Transcript:
        started = time.perf_counter()
        free = self._decode(self._free_recognizer(pcm.rate), pcm)
        restricted = (
            self._decode(self._grammar_recognizer(pcm.rate, grammar), pcm) if grammar else ""
        )
        return Transcript(free, restricted, pcm.seconds, time.perf_counter() - started)

    def _free_recognizer(self, rate: int) -> Any:
        if rate not in self._free:
            self._free[rate] = self._vosk.KaldiRecognizer(self._model, rate)
        return self._free[rate]

    def _grammar_recognizer(self, rate: int, grammar: Sequence[str]) -> Any:
        key = (rate, hash(tuple(grammar)))
        if key not in self._grammar:
            phrases = [w for w in grammar if self.knows(w)] + [UNKNOWN]
            self._grammar = {k: v for k, v in self._grammar.items() if k[0] != rate}
            self._grammar[key] = self._vosk.KaldiRecognizer(
                self._model, rate, json.dumps(phrases, ensure_ascii=False)
            )
        return self._grammar[key]

    @staticmethod
    def _decode(recognizer: Any, pcm: Pcm) -> str:
        for start in range(0, len(pcm.data), CHUNK):
            recognizer.AcceptWaveform(pcm.data[start : start + CHUNK])
        text = json.loads(recognizer.FinalResult())["text"]
        recognizer.Reset()
        return _words(str(text))


class SphinxRecognizer:
    """English on the CMU model bundled with pocketsphinx, restricted to a word-loop grammar.

    Free recognition with that model is of no use on telephone speech, so both passes are
    the grammar pass; an English Vosk model, when installed, replaces this."""

    rate: int | None = 16000  # the bundled model's own rate

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoders: dict[tuple[int, int], Any] = {}
        self._probe = Decoder(samprate=16000, lm=None, loglevel="FATAL")

    def knows(self, word: str) -> bool:
        return self._probe.lookup_word(word) is not None

    def transcribe(self, pcm: Pcm, grammar: Sequence[str]) -> Transcript:
        started = time.perf_counter()
        words = [w for w in grammar if self.knows(w)]
        if not words:
            return Transcript("", "", pcm.seconds, 0.0)
        decoder = self._decoder(pcm.rate, words)
        decoder.start_utt()
        decoder.process_raw(pcm.data, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        text = _words(hyp.hypstr) if hyp is not None else ""
        return Transcript(text, text, pcm.seconds, time.perf_counter() - started)

    def _decoder(self, rate: int, words: list[str]) -> Any:
        from pocketsphinx import Decoder

        key = (rate, hash(tuple(words)))
        if key not in self._decoders:
            alternatives = " | ".join(words)
            grammar = f"#JSGF V1.0;\ngrammar words;\npublic <utterance> = ( {alternatives} )+;\n"
            decoder = Decoder(samprate=rate, lm=None, loglevel="FATAL")
            decoder.set_jsgf_string("words", grammar)
            decoder.activate_search("words")
            self._decoders = {key: decoder}
        return self._decoders[key]
