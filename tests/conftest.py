from __future__ import annotations

from pathlib import Path

import pytest

from hotline.config import LoadedConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"


@pytest.fixture(scope="session")
def shipped() -> LoadedConfig:
    return load_config(CONFIG_DIR)
