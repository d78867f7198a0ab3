"""Recognizers behind one interface: a free transcript and a restricted one.

The small Mandarin model is weak on telephone audio, so every utterance is decoded twice:
freely (the transcript kept on the ticket) and against a grammar of the classifier's own
vocabulary, which cannot wander off into words no desk cares about. `phrases` are the
classifier's keywords and examples of the language; each recognizer builds (and keeps)
its restricted model from them.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from speech.arpa import bigram_arpa
from speech.audio import Pcm
from speech.vocabulary import chinese_vocabulary

UNKNOWN = "[unk]"
Passes = Literal["both", "free", "grammar"]
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

    def transcribe(
        self, pcm: Pcm, phrases: Sequence[str], passes: Passes = "both"
    ) -> Transcript: ...


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

    def transcribe(self, pcm: Pcm, phrases: Sequence[str], passes: Passes = "both") -> Transcript:
        started = time.perf_counter()
        free = self._decode(self._free_recognizer(pcm.rate), pcm) if passes != "grammar" else ""
        restricted = (
            self._decode(self._grammar_recognizer(pcm.rate, tuple(phrases)), pcm)
            if phrases and passes != "free"
            else ""
        )
        return Transcript(free, restricted, pcm.seconds, time.perf_counter() - started)

    def _free_recognizer(self, rate: int) -> Any:
        if rate not in self._free:
            self._free[rate] = self._vosk.KaldiRecognizer(self._model, rate)
        return self._free[rate]

    def _grammar_recognizer(self, rate: int, phrases: tuple[str, ...]) -> Any:
        key = (rate, hash(phrases))
        if key not in self._grammar:
            words = [*chinese_vocabulary(phrases, self.knows), UNKNOWN]
            self._grammar = {k: v for k, v in self._grammar.items() if k[0] != rate}
            self._grammar[key] = self._vosk.KaldiRecognizer(
                self._model, rate, json.dumps(words, ensure_ascii=False)
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
    """English on the CMU model bundled with pocketsphinx, with a bigram model of the
    desks' English phrases: free recognition with that model is of no use on telephone
    speech, so both passes are this restricted one. An English Vosk model, when
    installed, replaces it."""

    rate: int | None = 16000  # the bundled model's own rate

    def __init__(self, workdir: Path | None = None) -> None:
        from pocketsphinx import Decoder

        self._decoders: dict[int, Any] = {}
        self._probe = Decoder(samprate=16000, lm=None, loglevel="FATAL")
        self._workdir = Path(workdir or tempfile.mkdtemp(prefix="hotline-sphinx-"))

    def knows(self, word: str) -> bool:
        return self._probe.lookup_word(word) is not None

    def transcribe(self, pcm: Pcm, phrases: Sequence[str], passes: Passes = "both") -> Transcript:
        """One pass does for both: the free and the restricted transcript are the same."""
        started = time.perf_counter()
        if not phrases:
            return Transcript("", "", pcm.seconds, 0.0)
        decoder = self._decoder(tuple(phrases))
        decoder.start_utt()
        decoder.process_raw(pcm.data, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        text = _words(hyp.hypstr) if hyp is not None else ""
        return Transcript(text, text, pcm.seconds, time.perf_counter() - started)

    def _decoder(self, phrases: tuple[str, ...]) -> Any:
        from pocketsphinx import Decoder

        key = hash(phrases)
        if key not in self._decoders:
            model = self._workdir / f"phrases-{key & 0xFFFFFFFF:08x}.arpa"
            model.write_text(bigram_arpa(phrases, self.knows), encoding="utf-8")
            decoder = Decoder(samprate=16000, lm=str(model), loglevel="FATAL")
            self._decoders = {key: decoder}
        return self._decoders[key]
