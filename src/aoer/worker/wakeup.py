"""LISTEN for queue notifications on one connection and turn them into wake-up calls: new
jobs (`aoer_queue`) and the operator's pause and resume (`aoer_queue_control`)."""

import asyncio
import logging
from collections.abc import Callable

from aoer.constants import QUEUE_CHANNEL, QUEUE_CONTROL_CHANNEL
from aoer.errors import DatabaseError
from aoer.store import Store

logger = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0


async def listen_for_jobs(
    store: Store,
    wake: Callable[[bool, str | None], None],
    ready: asyncio.Event,
    control: Callable[[str], None] | None = None,
) -> None:
    """Call `wake(True, priority)` on every job NOTIFY (its payload: the enqueued priority),
    `control(payload)` on a pause or resume, and `wake(False, None)` once LISTEN is (back) in
    place for what was queued meanwhile; reconnect if the connection drops (the poll and the
    heartbeat cover gaps)."""
    while True:
        try:
            async with store.listen(QUEUE_CHANNEL, QUEUE_CONTROL_CHANNEL) as notifications:
                ready.set()
                wake(False, None)  # anything queued while we were not listening
                async for note in notifications:
                    if note.channel == QUEUE_CONTROL_CHANNEL:
                        if control is not None:
                            control(note.payload)
                    else:
                        wake(True, note.payload)
        except (DatabaseError, OSError) as exc:
            logger.warning("queue listener lost its connection (%s); reconnecting", exc)
        await asyncio.sleep(RECONNECT_DELAY_S)
