"""What one desk's callers say: plain data read from `config/examples/`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DeskExamples:
    """Keywords and example utterances per language, the examples grouped by appeal type."""

    keywords: Mapping[str, Sequence[str]]
    examples: Mapping[str, Mapping[str, Sequence[str]]]

    def texts(self, lang: str) -> list[str]:
        out = list(self.keywords.get(lang, ()))
        for utterances in self.examples.get(lang, {}).values():
            out.extend(utterances)
        return out

    def count(self, lang: str) -> int:
        return sum(len(u) for u in self.examples.get(lang, {}).values())


def grammar_texts(data: Mapping[str, DeskExamples], lang: str) -> tuple[str, ...]:
    """Every phrase of a language, from which a recognizer builds its grammar vocabulary."""
    return tuple(text for desk in data.values() for text in desk.texts(lang))
