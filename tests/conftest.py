from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.config import LoadedConfig, load_config
from tests.databases import database_url

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"


@pytest.fixture(scope="session")
def shipped() -> LoadedConfig:
    return load_config(CONFIG_DIR)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test that takes this runs on SQLite and on a fresh PostgreSQL database."""
    async for url in database_url(request.param, tmp_path):
        yield url
