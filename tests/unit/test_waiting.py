"""A worker's helpers stop when cancelled, whatever moment the cancellation arrives at
(a worker stopped right after it started once ran on forever: Python 3.11's `wait_for`
swallowed the cancel that arrived as the event it waited for was set)."""

import asyncio
import contextlib

import pytest

from aoer.waiting import awaiting, cancel_all, wait_set


async def test_wait_set_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 10) is True


async def test_a_cancel_in_the_turn_the_event_is_set_still_cancels() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_set(event, 10))
    await asyncio.sleep(0)  # it is waiting now
    event.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_cancel_all_stops_a_task_that_swallowed_the_first_cancel() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        swallowed.set()
        await asyncio.sleep(60)  # only a second cancel ends it

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_all([task]), 10)
    assert swallowed.is_set()
    assert task.cancelled()


async def test_awaiting_names_each_await_of_a_task_outermost_first() -> None:
    event = asyncio.Event()

    async def inner() -> None:
        await event.wait()

    async def outer() -> None:
        await inner()

    task = asyncio.create_task(outer(), name="the-outer")
    await asyncio.sleep(0)
    where = awaiting(task)
    event.set()
    await task
    steps = where.split(" → ")
    assert [s.split(" ")[0] for s in steps] == ["outer", "inner", "wait"], where
    assert steps[0].startswith("outer (test_waiting.py:")
    assert steps[2].startswith("wait (locks.py:")
    assert awaiting(task) == "done"
