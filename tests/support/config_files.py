"""Editing a copy of the shipped config in a test, and reading the errors it then gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.config import ConfigInvalid, load_config


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def errors_of(directory: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        load_config(directory)
    return [str(e) for e in caught.value.errors]


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)
