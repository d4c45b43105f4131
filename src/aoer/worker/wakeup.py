"""LISTEN for queue notifications on one connection and turn them into a wake-up event."""

import asyncio
import logging
from collections.abc import Callable

from aoer.constants import QUEUE_CHANNEL
from aoer.errors import DatabaseError
from aoer.store import Store

logger = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0


async def listen_for_jobs(store: Store, wake: Callable[[bool], None], ready: asyncio.Event) -> None:
    """Call `wake(True)` on every NOTIFY, and `wake(False)` once LISTEN is (back) in place for
    what was queued meanwhile; reconnect if the connection drops (the poll covers gaps)."""
    while True:
        try:
            async with store.listen(QUEUE_CHANNEL) as notifications:
                ready.set()
                wake(False)  # anything queued while we were not listening
                async for _ in notifications:
                    wake(True)
        except (DatabaseError, OSError) as exc:
            logger.warning("queue listener lost its connection (%s); reconnecting", exc)
        await asyncio.sleep(RECONNECT_DELAY_S)
