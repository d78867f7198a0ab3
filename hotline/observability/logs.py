"""Structured JSON logs, with every phone number masked wherever it appears."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from casework.phone import PhoneNumber, mask

# In free text (an error, a URL, a note), whatever looks like a number: E.164, and bare
# runs of 11+ digits (a mainland mobile without its +86); not digits inside a word, so
# CallSids, ticket numbers and dates stay readable. Looser than a parse on purpose: a
# number that is not quite valid is still somebody's.
_PHONE = re.compile(r"(?<![\w+])(\+\d{6,15}|\d{11,15})(?!\w)")


def mask_number(text: str) -> str:
    """Every number-like run in `text` masked as `casework.phone.mask` masks a number."""
    return _PHONE.sub(lambda match: mask(match.group(0)), text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, PhoneNumber):
        return value.masked  # a number logged as itself: masked by what it is
    if isinstance(value, str):
        return mask_number(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def mask_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key in ("timestamp", "level"):
            continue
        event_dict[key] = _mask_value(value)
    return event_dict


def _json(event: Any, **kw: Any) -> str:
    """One log line. orjson: the standard library's encoder was a third of each webhook's
    logging CPU. Non-ASCII (Chinese prompts, transcripts) is written as is."""
    return orjson.dumps(event, default=kw.get("default"), option=orjson.OPT_NON_STR_KEYS).decode()


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_processor,
            structlog.processors.JSONRenderer(serializer=_json),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
