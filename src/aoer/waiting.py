"""Waiting for an event or a queue's next item with a timeout, and stopping helper tasks,
cancellable at every moment (the worker's loop and scheduler, the API's event hub and
streams); and saying where each task of a process waits (`log_tasks`, on SIGUSR1)."""

import asyncio
import contextlib
import logging
from collections.abc import Collection
from pathlib import Path
from typing import TypeVar

from aoer.wording import plural

logger = logging.getLogger(__name__)

RECANCEL_S = 0.5  # how long a cancelled helper gets before it is cancelled again

T = TypeVar("T")


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; whether it was set.

    Not `asyncio.wait_for(event.wait(), seconds)`: on Python 3.11 that swallows a
    cancellation arriving in the same turn as the event is set, and a helper cancelled that
    way ran on forever, so a worker stopped right after it started never exited."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def get_within(queue: asyncio.Queue[T], seconds: float) -> T:
    """The queue's next item; TimeoutError if none comes within `seconds`.

    Not `asyncio.wait_for(queue.get(), seconds)`, for the reason in `wait_set`: a stream
    cancelled as an item arrived took the item and ran on."""
    async with asyncio.timeout(seconds):
        return await queue.get()


async def cancel_all(tasks: Collection[asyncio.Task[None]], within_s: float = 10.0) -> None:
    """Cancel the tasks and wait until they have ended, cancelling again the ones still
    running every half second: a cancellation can be swallowed on its way (the same Python
    3.11 race in `wait_for`, inside libraries too), and one cancel was then not enough to stop
    a helper. Gives up after `within_s`, logging the tasks left."""
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + within_s
    while pending and asyncio.get_running_loop().time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a helper's own error was logged by itself
    if pending:
        logger.warning("[AOER] %d helper tasks did not stop: %s", len(pending), pending)


def awaiting(task: "asyncio.Task[object]") -> str:
    """Where `task` waits: its chain of awaits, outermost first, each as `function
    (file:line)`, down to the last coroutine (what that awaits, a future, has no frame)."""
    if task.done():
        return "done"
    steps = []
    node: object = task.get_coro()
    while node is not None:
        frames = (getattr(node, name, None) for name in ("cr_frame", "gi_frame", "ag_frame"))
        frame = next((f for f in frames if f is not None), None)
        if frame is None:
            break
        code = frame.f_code
        steps.append(f"{code.co_name} ({Path(code.co_filename).name}:{frame.f_lineno})")
        awaited = (getattr(node, name, None) for name in ("cr_await", "gi_yieldfrom", "ag_await"))
        node = next((a for a in awaited if a is not None), None)
    return " → ".join(steps) or "not started"


def log_tasks() -> None:
    """Log each task of the running loop and where it waits: for `kill -USR1` on a worker or
    an API process that seems stuck (a drain that never exits, a stop that hangs)."""
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    logger.info("[AOER] %s, each where it waits (SIGUSR1):", plural(len(tasks), "task"))
    for task in tasks:
        logger.info("[AOER]   %s: %s", task.get_name(), awaiting(task), extra={"action": "tasks"})
