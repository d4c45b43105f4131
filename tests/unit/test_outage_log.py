"""A listener whose database is away says so once, then once a minute, and says when it is
back (aoer.log.Outage); it used to log a warning for every one-second retry."""

import asyncio
import logging

import pytest

from aoer.log import Outage
from aoer.store import Store
from aoer.worker.wakeup import listen_for_jobs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_loss_is_told_once_then_once_a_minute_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = Outage(logging.getLogger("test.outage"), "queue listener", clock=clock)
    caplog.set_level(logging.WARNING, "test.outage")
    outage.connected()  # connected from the start: nothing to say
    for _ in range(59):  # a retry a second for 59 s
        outage.failed(ConnectionRefusedError("refused"))
        clock.now += 1
    outage.failed(ConnectionRefusedError("refused"))  # 59 s after the first
    clock.now += 1
    outage.failed(ConnectionRefusedError("refused"))  # 60 s: the reminder
    clock.now += 30
    outage.connected()
    outage.connected()
    assert [r.getMessage() for r in caplog.records] == [
        "queue listener lost its database connection (refused); reconnecting",
        "queue listener still has no database connection after 60 s (refused); reconnecting",
        "queue listener reconnected after 90 s",
    ]
    caplog.clear()
    outage.failed(ConnectionRefusedError("again"))  # a new outage is told again at once
    assert [r.getMessage() for r in caplog.records] == [
        "queue listener lost its database connection (again); reconnecting"
    ]


async def test_a_worker_listener_without_its_database_warns_once_not_every_second(
    caplog: pytest.LogCaptureFixture, store: Store
) -> None:
    """The real listener against a port nothing listens on, through three retries."""
    away = Store(store.pool, "postgresql://aoer@127.0.0.1:9/none?connect_timeout=2")
    caplog.set_level(logging.WARNING, "aoer.worker.wakeup")
    ready = asyncio.Event()
    task = asyncio.create_task(listen_for_jobs(away, lambda *_: None, ready))
    try:
        await asyncio.sleep(2.5)  # the first try and two retries, a second apart
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not ready.is_set()
    warned = [r.getMessage() for r in caplog.records if r.name == "aoer.worker.wakeup"]
    assert len(warned) == 1, warned
    assert warned[0].startswith("queue listener lost its database connection (")
