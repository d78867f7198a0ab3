"""Transactions: a transaction as a plain function of a Connection, on SQLite (its writer
thread, with group commit) and on PostgreSQL (the async engine)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection

from hotline.store.engine import Transactions, make_engine, reads

metadata = MetaData()
notes = Table("tx_notes", metadata, Column("id", Integer, primary_key=True), Column("text", String))


@pytest.fixture
async def transactions(db_url: str) -> AsyncIterator[Transactions]:
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    tx = Transactions(engine)
    yield tx
    await tx.aclose()
    await engine.dispose()


def add(conn: Connection, note_id: int, text: str) -> str:
    conn.execute(notes.insert(), {"id": note_id, "text": text})
    return threading.current_thread().name


def add_then_fail(conn: Connection) -> str:
    add(conn, 100, "half done")
    raise ValueError("changed its mind")


def texts(conn: Connection) -> list[str]:
    return [str(t) for t in conn.scalars(select(notes.c.text).order_by(notes.c.id))]


async def test_a_failing_transaction_among_many_loses_only_its_own_writes(
    transactions: Transactions,
) -> None:
    await transactions.run(add, 7, "first")
    gate = threading.Event()
    held = None
    if transactions.dialect == "sqlite":
        # The writer thread is held, so the twenty below queue up and go as one batch.
        held = asyncio.ensure_future(transactions.run(lambda _: gate.wait(5)))
    asked = [asyncio.ensure_future(transactions.run(add, i, f"note {i}")) for i in range(1, 21)]
    asked.insert(10, asyncio.ensure_future(transactions.run(add_then_fail)))
    await asyncio.sleep(0.05)
    gate.set()
    if held is not None:
        assert await held is True
    outcomes = await asyncio.gather(*asked, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    # Id 7 was taken; the other wrote a note, then failed: its note must not be kept.
    assert sorted(type(f).__name__ for f in failed) == ["IntegrityError", "ValueError"]
    expected = sorted(["first", *(f"note {i}" for i in range(1, 21) if i != 7)])
    assert sorted(await transactions.run(texts)) == expected


async def test_sqlite_files_are_written_on_the_writer_thread(
    transactions: Transactions,
) -> None:
    thread = await transactions.run(add, 1, "where")
    if transactions.dialect == "sqlite":
        assert thread == "sqlite-writer"
    else:
        assert thread == threading.current_thread().name  # the event loop's, through run_sync


async def test_a_read_in_progress_does_not_hold_up_a_write(transactions: Transactions) -> None:
    """A live view's or a search's read, still open, and a call's ticket write meanwhile:
    the write goes through (on SQLite a write-locking read kept it waiting 5 s)."""
    async with reads(transactions.engine).connect() as conn:
        assert list(await conn.scalars(select(notes.c.text))) == []  # its transaction is open
        await asyncio.wait_for(transactions.run(add, 3, "while read"), 2)
    assert await transactions.run(texts) == ["while read"]
