"""LISTEN for queue notifications on one connection and turn them into a wake-up event."""

import asyncio
import logging
from collections.abc import Callable

import psycopg

from aoer.constants import QUEUE_CHANNEL
from aoer.db.pool import connect

logger = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0


async def listen_for_jobs(url: str, wake: Callable[[], None], ready: asyncio.Event) -> None:
    """Call `wake` on every NOTIFY; reconnect if the connection drops (the poll covers gaps)."""
    while True:
        try:
            conn = await connect(url, autocommit=True)
            try:
                await conn.execute(f"LISTEN {QUEUE_CHANNEL}")
                ready.set()
                wake()  # anything queued while we were not listening
                async for _ in conn.notifies():
                    wake()
            finally:
                await conn.close()
        except (psycopg.Error, OSError) as exc:
            logger.warning("queue listener lost its connection (%s); reconnecting", exc)
        except Exception as exc:  # AoerError from connect
            logger.warning("queue listener cannot connect (%s); retrying", exc)
        await asyncio.sleep(RECONNECT_DELAY_S)
