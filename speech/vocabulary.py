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
            size = next(
                (n for n in range(min(max_word, len(run) - i), 0, -1) if known(run[i : i + n])),
                None,
            )
            if size is None:  # a character the model does not know: the grammar cannot hold it
                i += 1
                continue
            words.append(run[i : i + size])
            i += size
    return words


def chinese_vocabulary(texts: Iterable[str], known: Callable[[str], bool]) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for word in segment(text, known):
            seen.setdefault(word, None)
    return list(seen)
