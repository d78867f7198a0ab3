"""Engines and schema upgrades for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept the plain driver names ops know and pick the async driver."""
    parsed = make_url(url)
    driver = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def make_engine(url: str, *, statement_timeout_ms: int = 2000) -> AsyncEngine:
    """`hide_parameters`: a database error names its statement but not the values bound to
    it (callers' numbers, their words), since errors go to the logs."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection, so webhooks queue for it on the event loop. With several, each
        # waiting writer polls SQLite's lock with sleeps that grow to 100 ms, and under a few
        # dozen concurrent calls the writes convoy into seconds.
        engine = create_async_engine(
            url,
            connect_args={"timeout": 5},
            hide_parameters=True,
            pool_size=1,
            max_overflow=0,
            pool_timeout=10,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    # Bounded pool and statement timeout: a slow database must not hold a webhook past
    # Twilio's 15 s budget.
    return create_async_engine(
        url,
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=2,
        pool_pre_ping=True,
        connect_args={
            "timeout": 3,
            # The statement timeout is the server's; this one is the client's, for a network
            # that holds the bytes (a write left running past a webhook's budget ends here).
            "command_timeout": max(1.0, 2 * statement_timeout_ms / 1000),
            "server_settings": {"statement_timeout": str(statement_timeout_ms)},
        },
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, say when a transaction begins (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    """Take SQLite's write lock when a transaction starts, not at its first write.

    Two webhooks of one call (the queue result and the status callback) may read the same
    ticket at once; with SQLite's default deferred transactions both then try to upgrade
    their read lock to a write lock and one fails with "database is locked" at once,
    without waiting. Taking the lock first makes the second wait its turn instead.
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic), on the engine's own connection."""

    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes start at once: one migrates, the others wait and find it done.
            await connection.execute(text("SELECT pg_advisory_xact_lock(1234512345)"))
        await connection.run_sync(run)
