"""Words a recognizer may hear in its grammar pass.

Vosk's grammar takes space-separated words of the model's own vocabulary; an unknown word
is silently dropped. Chinese text has no spaces, so phrases are cut greedily into the
longest words the model knows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_HAN = re.compile(r"[\u4e00-\u9fff]+")
MAX_WORD = 4


def segment(text: str, known: Callable[[str], bool], max_word: int = MAX_WORD) -> list[str]:
    """Forward maximum matching: at each place the longest known word, else one character."""
    words: list[str] = []
    for run in _HAN.findall(text):
        i = 0
        while i < len(run):
            for size in range(min(max_word, len(run) - i), 0, -1):
                piece = run[i : i + size]
                if size == 1 or known(piece):
                    if known(piece):
                        words.append(piece)
                    i += size
                    break
    return words


def chinese_vocabulary(texts: Iterable[str], known: Callable[[str], bool]) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for word in segment(text, known):
            seen.setdefault(word, None)
    return list(seen)
