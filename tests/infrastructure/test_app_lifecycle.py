"""The app's resources, each opened and closed by a cleanup context of its own: a resource
that fails to start does not leave those started before it open."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from hotline.app import make_app
from hotline.config import LoadedConfig
from hotline.settings import Settings
from hotline.store.spool import Spool
from tests.support.databases import POSTGRES_ADMIN, database_url


async def connections_to(database: str) -> int:
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        count = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
        )
    finally:
        await admin.close()
    return int(count)


async def test_a_failed_start_closes_what_had_started(
    tmp_path: Path, shipped: LoadedConfig
) -> None:
    # The spool's path is taken by a folder: the ticket writes cannot open, after the
    # database has been reached and migrated through a pool of connections.
    blocked = tmp_path / "spool.db"
    blocked.mkdir()
    async for url in database_url("postgresql", tmp_path):
        database = url.rsplit("/", 1)[-1]
        app = make_app(Settings(database_url=url, spool_path=blocked), shipped)
        runner = web.AppRunner(app)
        with pytest.raises(Exception):  # noqa: B017 - whatever the spool's error is
            await runner.setup()
        await runner.cleanup()
        # The engine started before the failure was disposed: no connection is left open.
        assert await connections_to(database) == 0


async def test_a_stopped_app_releases_its_spool(tmp_path: Path, shipped: LoadedConfig) -> None:
    spool = tmp_path / "spool.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'h.db'}", spool_path=spool)
    runner = web.AppRunner(make_app(settings, shipped))
    await runner.setup()
    await runner.cleanup()
    Spool(spool).close()  # taken again: the app's lock was let go
