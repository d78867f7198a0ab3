"""Twilio's recordings API as far as the service uses it (basic auth, `<url>.wav`), serving
the committed test recordings; and where the speech model and those recordings are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import BasicAuth, web
from aiohttp.test_utils import TestServer

from hotline.carrier.callers import Recording as CallerRecording
from tests.support.line import AUTH_TOKEN
from tests.support.paths import ROOT

AUDIO = ROOT / "tests" / "data" / "audio"
MODELS = ROOT / "models"
ACCOUNT = "AC" + "7" * 32


def require_model() -> None:
    assert (MODELS / "vosk-model-small-cn-0.22" / "am" / "final.mdl").is_file(), (
        "run `hotline speech fetch-model` (make test does)"
    )


@dataclass
class Recordings:
    files: dict[str, bytes] = field(default_factory=dict)
    not_yet: dict[str, int] = field(default_factory=dict)  # 404s before it is "stored"
    slow: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    base: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append(name)
        auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        if (auth.login, auth.password) != (ACCOUNT, AUTH_TOKEN):
            return web.Response(status=401)
        if name in self.slow:
            await asyncio.sleep(30)
        if self.not_yet.get(name, 0) > 0:
            self.not_yet[name] -= 1
            return web.Response(status=404)
        if name not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[name], content_type="audio/x-wav")

    def url(self, name: str) -> str:
        return f"{self.base}/Recordings/{name}"


@asynccontextmanager
async def serve_recordings(files: dict[str, bytes] | None = None) -> AsyncIterator[Recordings]:
    """`files` by name (default: every recording in tests/data/audio, by file stem)."""
    store = Recordings(
        files if files is not None else {p.stem: p.read_bytes() for p in AUDIO.glob("*.wav")}
    )
    app = web.Application()
    app.router.add_get("/Recordings/{name}.wav", store.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    store.base = str(server.make_url("")).rstrip("/")
    try:
        yield store
    finally:
        await server.close()


def spoken(recordings: Recordings, name: str) -> CallerRecording:
    return CallerRecording(duration=3.0, url=recordings.url(name))
