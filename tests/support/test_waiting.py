"""The bounded wait the tests share."""

from __future__ import annotations

import time

import pytest

from tests.support.waiting import eventually


async def test_returns_the_first_true_value_of_a_function_or_a_coroutine() -> None:
    looks: list[int] = []

    def third_look() -> int:
        looks.append(len(looks))
        return 20 if len(looks) == 3 else 0

    async def at_once() -> str:
        return "ready"

    assert await eventually(third_look, "the third look") == 20
    assert looks == [0, 1, 2]
    assert await eventually(at_once, "a coroutine's answer") == "ready"


async def test_gives_up_after_its_timeout_naming_what_it_awaited() -> None:
    queue = [3]
    started = time.monotonic()
    with pytest.raises(AssertionError) as failed:
        await eventually(lambda: not queue, "the queue to empty", timeout_s=0.2)
    assert str(failed.value) == "the queue to empty: not within 0.2 s (last seen: False)"
    assert 0.2 <= time.monotonic() - started < 1.0
