"""Ticket changes to JSON and back, for the spool: a change written while the database was
away is replayed, maybe in another process or after a restart, exactly as it was decided.

Generic over the dataclass tree (read from the type hints), so a field added to
`TicketChange` is carried without touching this module; `tests/store/test_spool.py` checks the
round trip of every field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from functools import cache
from typing import Any

from ivr.actions import TicketChange

JsonValue = Any  # what json.dumps takes and json.loads gives


class CodecError(ValueError):
    """A stored change does not fit the dataclass it is read into."""


def encode_change(change: TicketChange) -> JsonValue:
    return _encode(change)


def decode_change(data: JsonValue) -> TicketChange:
    decoded = _decode(TicketChange, data)
    assert isinstance(decoded, TicketChange)
    return decoded


def _encode(value: Any) -> JsonValue:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise CodecError(f"cannot store a {type(value).__name__} in the spool")


def _decode(kind: Any, data: JsonValue) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, data)
            except (CodecError, ValueError, TypeError):
                continue
        raise CodecError(f"{data!r} fits none of {kind}")
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(data, list):
            raise CodecError(f"expected a list for {kind}, got {data!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in data)
        if len(args) != len(data):
            raise CodecError(f"expected {len(args)} items for {kind}, got {len(data)}")
        return tuple(_decode(arg, item) for arg, item in zip(args, data, strict=True))
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(data)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise CodecError(f"expected an object for {kind.__name__}, got {data!r}")
        hints = _hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        unknown = set(data) - known
        if unknown:
            raise CodecError(f"{kind.__name__} has no field {sorted(unknown)}")
        return kind(**{name: _decode(hints[name], value) for name, value in data.items()})
    if kind is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if kind in (str, int, bool) and type(data) is kind:
        return data
    raise CodecError(f"expected {kind}, got {data!r}")


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)
