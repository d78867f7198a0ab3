"""What the understanding step needs of speech recognition, wherever it runs.

Two services implement it: `speech.pool.SpeechPool` (worker processes of this server) and
`hotline.understanding.queue.QueuedSpeech` (`hotline speech-worker` processes fed through a job
queue on Redis), so the speech capacity can grow apart from the webhook servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from speech.recognizer import Passes, Transcript


class SpeechService(Protocol):
    async def recognise(
        self,
        raw: bytes,
        lang: str,
        grammar: Sequence[str],
        timeout_s: float,
        passes: Passes = "both",
    ) -> Transcript:
        """The transcript of the WAV `raw`, within `timeout_s`; or `SpeechProblem` with the
        stable id of what went wrong (`speech-timeout` past the deadline)."""
        ...

    async def aclose(self) -> None: ...
