"""The live streams' shared reads: streams woken by one change read the line once."""

from __future__ import annotations

import asyncio

import pytest

from hotline.web.live_reads import SharedReads, Snapshot


class CountedReads:
    """A read of the line that takes a moment and counts how often it ran."""

    def __init__(self, fails: bool = False) -> None:
        self.count = 0
        self.fails = fails
        self.gate = asyncio.Event()

    async def __call__(self) -> Snapshot:
        self.count += 1
        await self.gate.wait()
        if self.fails:
            raise RuntimeError("database away")
        return {"read": self.count}


async def test_streams_woken_by_one_change_share_one_read() -> None:
    shared, read, token = SharedReads(fresh_s=10), CountedReads(), object()
    streams = [asyncio.ensure_future(shared.snapshot(token, read)) for _ in range(10)]
    await asyncio.sleep(0)
    read.gate.set()
    assert await asyncio.gather(*streams) == [{"read": 1}] * 10
    assert read.count == 1
    assert await shared.snapshot(token, read) == {"read": 1}  # still fresh, same change


async def test_a_new_change_or_an_old_read_means_a_new_read() -> None:
    shared, read = SharedReads(fresh_s=0.05), CountedReads()
    read.gate.set()
    first, second = object(), object()
    assert await shared.snapshot(first, read) == {"read": 1}
    assert await shared.snapshot(second, read) == {"read": 2}  # a change since
    await asyncio.sleep(0.06)
    assert await shared.snapshot(second, read) == {"read": 3}  # the poll: waits grow


async def test_a_failed_read_is_not_handed_out_again() -> None:
    shared, token = SharedReads(fresh_s=10), object()
    broken = CountedReads(fails=True)
    broken.gate.set()
    with pytest.raises(RuntimeError):
        await shared.snapshot(token, broken)
    working = CountedReads()
    working.gate.set()
    assert await shared.snapshot(token, working) == {"read": 1}


async def test_a_stream_that_goes_away_does_not_cancel_the_others_read() -> None:
    shared, read, token = SharedReads(fresh_s=10), CountedReads(), object()
    leaving = asyncio.ensure_future(shared.snapshot(token, read))
    staying = asyncio.ensure_future(shared.snapshot(token, read))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    read.gate.set()
    assert await staying == {"read": 1}
    assert leaving.cancelled() and read.count == 1
