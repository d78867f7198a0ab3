"""Recordings in, mono 16-bit PCM out (pydub), with the checks a phone line needs."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

with warnings.catch_warnings():
    # pydub looks for ffmpeg at import; WAV, the only format here, does not need it.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError


class AudioError(Exception):
    """A recording that cannot be recognised; `reason` is a stable id for logs and tickets."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Pcm:
    data: bytes  # 16-bit little-endian mono
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.data) / 2 / self.rate


def decode(raw: bytes, *, rate: int, min_s: float, max_s: float) -> Pcm:
    """A WAV file as mono 16-bit PCM at `rate`; AudioError when it is no use."""
    if not raw:
        raise AudioError("empty-recording")
    try:
        segment = AudioSegment.from_file(io.BytesIO(raw), format="wav")
        # A body cut short can end mid-sample; keep whole frames only.
        whole = len(segment.raw_data) - len(segment.raw_data) % segment.frame_width
        if whole != len(segment.raw_data):
            segment = segment._spawn(segment.raw_data[:whole])
    except (CouldntDecodeError, ValueError, EOFError, OSError, IndexError) as exc:
        raise AudioError("corrupt-audio", str(exc)[:200]) from None
    seconds = len(segment) / 1000
    if seconds < min_s:
        raise AudioError("too-short", f"{seconds:.1f} s")
    if seconds > max_s:
        # A long monologue: the start says what the matter is.
        segment = segment[: int(max_s * 1000)]
    segment = segment.set_channels(1).set_sample_width(2).set_frame_rate(rate)
    if segment.rms == 0:
        raise AudioError("silence")
    return Pcm(bytes(segment.raw_data), rate)
