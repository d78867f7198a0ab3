from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.config import LoadedConfig, load_config
from ivr.model import IvrPlan
from tests.support.browser import chromium_or_skip
from tests.support.databases import database_url
from tests.support.paths import CONFIG_DIR
from tests.support.redis_proxy import drop_prefix, redis_or_skip, unique_prefix


@pytest.fixture(scope="session")
def shipped() -> LoadedConfig:
    return load_config(CONFIG_DIR)


@pytest.fixture(scope="session")
def plan(shipped: LoadedConfig) -> IvrPlan:
    """The shipped IVR plan: its prompts, menus and desks are what a caller hears."""
    return shipped.plan


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A copy of the shipped config directory, for a test to edit."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    return target


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test that takes this runs on SQLite and on a fresh PostgreSQL database."""
    async for url in database_url(request.param, tmp_path):
        yield url


@pytest.fixture
async def redis_url() -> str:
    """The test Redis (skips when it is down, unless HOTLINE_REQUIRE_REDIS=1)."""
    return await redis_or_skip()


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, its keys deleted afterwards."""
    name = unique_prefix()
    yield name
    await drop_prefix(redis_url, name)


@pytest.fixture
def chromium() -> str:
    return chromium_or_skip()
