"""Recordings in, mono 16-bit PCM out (pydub), with the checks a phone line needs."""

from __future__ import annotations

import io
import itertools
import warnings
from dataclasses import dataclass

with warnings.catch_warnings():
    # pydub looks for ffmpeg at import; WAV, the only format here, does not need it.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError
    from pydub.utils import audioop  # the standard library's, or audioop-lts on 3.13


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


FRAME_S = 0.02  # energy is measured over 20 ms frames
MIN_PART_S = 2.0


def split_at_pauses(pcm: Pcm, parts: int) -> list[Pcm]:
    """`pcm` cut into about equal `parts`, each cut at the quietest moment near its mark.

    Two workers can then decode one long recording at once. Cutting in a pause, not at a
    fixed time, keeps words whole; the search stays within the middle third between marks.
    A recording too short to share is returned whole.
    """
    if parts <= 1 or pcm.seconds < parts * MIN_PART_S:
        return [pcm]
    frame = max(2, int(pcm.rate * FRAME_S) * 2)
    energy = [
        audioop.rms(pcm.data[i : i + frame], 2) for i in range(0, len(pcm.data) - frame + 1, frame)
    ]
    span = len(energy) / parts
    cuts = []
    for k in range(1, parts):
        low, high = int(span * (k - 1 / 3)), int(span * (k + 1 / 3))
        window = range(max(low, 1), min(high, len(energy) - 1))
        # The quietest 3-frame stretch: a pause between words, not a stop consonant.
        quietest = min(window, key=lambda i: energy[i - 1] + energy[i] + energy[i + 1])
        cuts.append(quietest * frame)
    bounds = [0, *cuts, len(pcm.data)]
    return [Pcm(pcm.data[a:b], pcm.rate) for a, b in itertools.pairwise(bounds)]
