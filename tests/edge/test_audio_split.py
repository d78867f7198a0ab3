"""Cutting one recording at its pauses, so two workers can decode it at once."""

from __future__ import annotations

import math
import struct

from speech.audio import Pcm, split_at_pauses

RATE = 8000


def tone(seconds: float, amplitude: int = 8000) -> bytes:
    n = int(seconds * RATE)
    return b"".join(
        struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 440 * i / RATE))) for i in range(n)
    )


def quiet(seconds: float) -> bytes:
    return b"\x00\x00" * int(seconds * RATE)


def test_the_cut_falls_in_the_pause_nearest_the_middle() -> None:
    # Speech 0-4.2 s, a pause 4.2-4.5 s, speech to 10 s: the cut must land in that pause.
    pcm = Pcm(tone(4.2) + quiet(0.3) + tone(5.5), RATE)
    first, second = split_at_pauses(pcm, 2)
    assert first.data + second.data == pcm.data
    assert 4.2 <= first.seconds <= 4.5


def test_three_parts_cut_at_the_three_pauses_that_matter() -> None:
    pcm = Pcm(tone(3.0) + quiet(0.3) + tone(3.0) + quiet(0.3) + tone(3.0), RATE)
    parts = split_at_pauses(pcm, 3)
    assert len(parts) == 3 and b"".join(p.data for p in parts) == pcm.data
    assert 3.0 <= parts[0].seconds <= 3.3 and 3.0 <= parts[1].seconds <= 3.3


def test_a_short_recording_stays_whole() -> None:
    pcm = Pcm(tone(3.0), RATE)
    assert split_at_pauses(pcm, 2) == [pcm]
    assert split_at_pauses(Pcm(tone(10.0), RATE), 1) == [Pcm(tone(10.0), RATE)]
