"""Editing a copy of the shipped config in a test, and reading the errors it then gives."""

from __future__ import annotations

import shutil
from datetime import time
from pathlib import Path

import pytest
import yaml

from hotline.config import ConfigInvalid, load_config
from tests.support.paths import CONFIG_DIR


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


def open_all_day(parent: Path) -> Path:
    """A copy of the shipped config, in `parent`, whose line answers at every hour of every
    day: no closing time, no dated exception. For a real `hotline serve`, which runs on the
    wall clock: a test of one must not depend on the hour (or the day) it runs at."""
    target = parent / "config"
    shutil.copytree(CONFIG_DIR, target)
    line_yaml = target / "line.yaml"
    line = yaml.safe_load(line_yaml.read_text(encoding="utf-8"))
    line["hours"].update(open="00:00", close="24:00", overrides=[])
    line_yaml.write_text(yaml.safe_dump(line, allow_unicode=True), encoding="utf-8")
    hours = load_config(target).plan.hours
    assert not hours.overrides and not hours.emergency_closed
    assert hours.daily.contains(time(0, 0)) and hours.daily.contains(time(23, 59, 59))
    return target
