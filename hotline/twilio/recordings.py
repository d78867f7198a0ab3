"""Fetching a caller's recording from Twilio: basic auth, a retry while it is not yet
available, and a deadline that the webhook's answer depends on."""

from __future__ import annotations

import asyncio
import base64

import aiohttp

MAX_BYTES = 16 * 1024 * 1024  # ten minutes of 8 kHz 16-bit audio is 9.6 MB


class FetchProblem(Exception):
    def __init__(self, problem: str, detail: str = "") -> None:
        super().__init__(problem, detail)
        self.problem = problem
        self.detail = detail


class RecordingFetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        account_sid: str,
        auth_token: str,
        allowed_prefixes: tuple[str, ...],
    ) -> None:
        self._session = session
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {credentials}"} if account_sid else {}
        self._allowed = allowed_prefixes

    async def fetch(self, url: str, deadline: float) -> bytes:
        """The recording as WAV; `deadline` is on the event loop's clock."""
        if not url.startswith(self._allowed):
            raise FetchProblem("recording-url-refused", url[:100])
        wav = url if url.endswith(".wav") else url + ".wav"
        loop = asyncio.get_running_loop()
        pause = 0.1
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise FetchProblem("recording-timeout")
            try:
                status, body = await self._get(wav, left)
            except TimeoutError:
                raise FetchProblem("recording-timeout") from None
            except aiohttp.ClientError as exc:
                raise FetchProblem("recording-fetch-failed", str(exc)[:200]) from None
            if status == 200:
                return body
            if status != 404:
                raise FetchProblem("recording-fetch-failed", f"HTTP {status}")
            # Twilio may call the action a moment before the recording is stored.
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, 0.5)

    async def _get(self, url: str, timeout_s: float) -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self._session.get(url, headers=self._headers, timeout=timeout) as response:
            if response.status != 200:
                return response.status, b""
            if (response.content_length or 0) > MAX_BYTES:
                raise FetchProblem("recording-too-large", str(response.content_length))
            # Read to the end: one read() returns only what has arrived so far.
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise FetchProblem("recording-too-large")
                chunks.append(chunk)
            body = b"".join(chunks)
            return 200, body
