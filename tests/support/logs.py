"""What a captured log gives away: caller numbers, phone-like digit runs, callers' words,
and lines that are not JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

# Fields whose very purpose is the caller's words (none today: the ticket keeps them).
TRANSCRIPT_FIELDS: frozenset[str] = frozenset()
# Tokens with long digit runs that are not phone numbers: Twilio SIDs, ticket numbers,
# times, digests, addresses in tracebacks, decimals.
_NOT_A_NUMBER = re.compile(
    r"(?:CA|RE|AC|QU|CF)[0-9a-fA-F]{32}"
    r"|E\d{8}-\d{6}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|0x[0-9a-fA-F]+"
    r"|(?<![0-9a-zA-Z])[0-9a-f]{16,}(?![0-9a-zA-Z])"
    r"|\d+\.\d+"
)
_DIGIT_RUN = re.compile(r"\d{7,}")


def fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every leaf of a log event as (dotted path, text)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from fields(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from fields(item, path)
    elif value is not None and not isinstance(value, bool | float):
        yield path, str(value)


def leaks(log: str, numbers: tuple[str, ...], words: tuple[str, ...] = ()) -> list[str]:
    """What the log gives away, one line per finding; [] for a clean log."""
    found: list[str] = []
    digits = [n.lstrip("+") for n in numbers]
    # A number without its country code is still the number.
    digits += [d[2:] for d in digits if d.startswith("86")]
    # Four characters in a row of what a caller said are enough to recognise it.
    windows = {w[i : i + 4] for w in words for i in range(max(0, len(w) - 3))}
    for index, line in enumerate(log.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            found.append(f"line {index}: not JSON: {line[:120]}")
            continue
        for path, value in fields(event):
            if path == "timestamp":
                continue
            for number in digits:
                if number in value:
                    found.append(f"{event.get('event')}.{path}: caller number {number}")
            if _DIGIT_RUN.search(_NOT_A_NUMBER.sub(" ", value)):
                found.append(f"{event.get('event')}.{path}: a phone-like digit run: {value[:200]}")
            if path.rsplit(".", 1)[-1] not in TRANSCRIPT_FIELDS:
                squeezed = re.sub(r"\s+", "", value)
                said = sorted(w for w in windows if w in squeezed)
                if said:
                    found.append(f"{event.get('event')}.{path}: the caller's words {said[:3]}")
    return found
