"""Engines and schema upgrades for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_S = 5

P = ParamSpec("P")
T = TypeVar("T")


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
            connect_args={"timeout": SQLITE_BUSY_S},
            hide_parameters=True,
            pool_size=1,
            max_overflow=0,
            pool_timeout=10,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # Bounded pool and statement timeout: a slow database must not hold a webhook past
    # Twilio's 15 s budget.
    return create_async_engine(
        url,
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=2,
        # No ping before each checkout: a round trip more for every transaction. A
        # connection that died in an outage fails its statement, which invalidates the
        # whole pool, and that write goes to the spool.
        connect_args={
            "timeout": 3,
            # The statement timeout is the server's; this one is the client's, for a network
            # that holds the bytes (a write left running past a webhook's budget ends here).
            "command_timeout": max(1.0, 2 * statement_timeout_ms / 1000),
            "server_settings": {"statement_timeout": str(statement_timeout_ms)},
        },
    )


class Transactions:
    """Runs a whole transaction, written as a plain function of a SQLAlchemy `Connection`.

    On a SQLite file the functions run on a thread of their own, with a connection of their
    own, in one go each. Through aiosqlite every statement was a round trip through the event
    loop, so on a busy loop a transaction of ten statements held SQLite's single writer for
    ten turns of the loop, and the call path's writes queued into seconds. Functions that
    arrive while the thread is busy are committed together (group commit: one fsync for
    all); one that fails is rolled back alone (see `_Writer._try`). Elsewhere (PostgreSQL,
    or SQLite in memory) each runs in a transaction of its own on the async engine, its
    statements awaited.
    """

    def __init__(self, engine: AsyncEngine, *, batch: int = 32) -> None:
        self.engine = engine
        self._sync: Engine | None = None
        self._writer: _Writer | None = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sync = create_engine(
                url.set(drivername="sqlite"),
                connect_args={"timeout": SQLITE_BUSY_S, "check_same_thread": False},
                hide_parameters=True,
                pool_size=1,
                max_overflow=0,
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
            event.listen(self._sync, "begin", _sqlite_begin_immediate)
            self._writer = _Writer(self._sync, batch)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def run(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._writer is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work, *args, **kwargs)
        return await asyncio.wrap_future(
            self._writer.submit(lambda conn: work(conn, *args, **kwargs))
        )

    async def run_unlocked(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work` with each statement committed on its own (PostgreSQL's autocommit), for a
        statement on a row that every call updates: its lock is then held while the server
        runs it, not until this process gets round to sending COMMIT, which on a busy event
        loop is a turn of the loop later. On SQLite, a transaction as `run` makes one."""
        if self.dialect != "postgresql":
            return await self.run(work, *args, **kwargs)
        async with self.engine.connect() as conn:
            each = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await each.run_sync(work, *args, **kwargs)

    async def aclose(self) -> None:
        """Finish the transactions already asked for, then close the connection."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
        if self._sync is not None:
            self._sync.dispose()


_STOP = object()


class _Writer:
    """The thread that runs SQLite transactions, committing those that queued up together."""

    def __init__(self, engine: Engine, batch: int) -> None:
        self._engine = engine
        self._batch = batch
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((work, future))
        return future

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self._batch:
                try:
                    item = self._queue.get_nowait()
                except Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)  # after this batch
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Callable[[Connection], Any], Future[Any]]]) -> None:
        # One cancelled before it started (its waiter was cancelled: a shutdown) is not run.
        wanted = [(work, future) for work, future in batch if future.set_running_or_notify_cancel()]
        while wanted:
            wanted = self._try(wanted)

    def _try(
        self, batch: list[tuple[Callable[[Connection], Any], Future[Any]]]
    ) -> list[tuple[Callable[[Connection], Any], Future[Any]]]:
        """Run the batch in one transaction; what is left to run again when one failed.

        No savepoint per function (they cost more than the functions): when one fails, the
        whole transaction is rolled back, it gets its error, and the others run again.
        """
        results: list[Any] = []
        failed: tuple[Future[Any], Exception] | None = None
        try:
            with self._engine.begin() as conn:
                for work, future in batch:
                    try:
                        results.append(work(conn))
                    except Exception as error:
                        failed = (future, error)
                        raise _Failed() from error
        except _Failed:
            assert failed is not None
            culprit, problem = failed
            culprit.set_exception(problem)
            return [(w, f) for w, f in batch if f is not culprit]
        except Exception as error:  # BEGIN or COMMIT failed: nothing of the batch was written
            for _, future in batch:
                future.set_exception(error)
            return []
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
        return []


class _Failed(Exception):
    """One function of a batch failed: roll the batch back."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, say when a transaction begins (see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def reads(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for blocks that only read (`reads(engine).connect()`).

    On SQLite their transactions begin deferred: in WAL mode a reader never holds the
    write lock, so the live view, /healthz or a ticket search never keep a call's ticket
    write waiting. Elsewhere, the engine as it is.
    """
    return engine.execution_options(**{_READS: True})


_READS = "hotline_reads"


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READS):
        connection.exec_driver_sql("BEGIN")
    else:
        _sqlite_begin_immediate(connection)


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


async def in_transaction(
    tx: Transactions | None,
    engine: AsyncEngine,
    work: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`work` on the ticket store's transactions when a store was given them (on SQLite its
    writer thread is the one writer: a write of another store does not fight the ticket
    writes for the lock), else in a transaction of its own."""
    if tx is not None:
        return await tx.run(work, *args, **kwargs)
    async with engine.begin() as conn:
        return await conn.run_sync(work, *args, **kwargs)
