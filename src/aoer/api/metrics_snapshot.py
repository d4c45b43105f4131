"""What GET /metrics serves: the rendered metrics, refreshed at most once per interval.

Reading the queue's depth is a GROUP BY over `aoer_queue` (0.3 s at a million rows) and
rendering the registry costs the event loop milliseconds; a scrape used to do both, so a
few clients scraping in a loop held pooled connections and the loop away from every other
request. Now both happen at most once per `refresh_s` whatever the number of scrapers: in
between, scrapes get the stored body. A stale snapshot is refreshed by one read at a time
(single-flight); the scrapes that arrive meanwhile wait for that read, never start their
own, and never wait longer than `wait_s`. A read that fails leaves the last gauges in place,
sets `aoer_database_up` to 0, and `aoer_metrics_snapshot_age_seconds` keeps growing.

Scrapes are also answered one at a time, `spacing_s` apart: a client scraping in a loop then
waits its turn (an idle await) instead of taking its share of the event loop from every
other request. Prometheus scrapes every 15 s or so and never notices.
"""

import asyncio
import contextlib
import logging
import time
from typing import Final

from aoer.api.metrics import Metrics
from aoer.constants import WORKER_STALE_S
from aoer.errors import DatabaseError
from aoer.store import Store

logger = logging.getLogger(__name__)

READ_TIMEOUT_S: Final = 2.0  # the wait for a pooled connection before the read gives up
SCRAPE_WAIT_S: Final = 2.5  # a scrape waits this long for a read in flight, then answers
SCRAPE_SPACING_S: Final = 0.05  # scrapes start at least this far apart: 20 a second at most


class MetricsSnapshot:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        refresh_s: float,
        *,
        read_timeout_s: float = READ_TIMEOUT_S,
        wait_s: float = SCRAPE_WAIT_S,
        spacing_s: float = SCRAPE_SPACING_S,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.refresh_s = refresh_s
        self.read_timeout_s = read_timeout_s
        self.wait_s = wait_s
        self.spacing_s = spacing_s
        self._turn = asyncio.Lock()
        self._turn_at = 0.0  # time.monotonic() when the last scrape's turn came
        self._body: bytes | None = None
        self._rendered_at = 0.0  # time.monotonic() of `_body`
        self._read_at: float | None = None  # the last successful read
        self._tried_at: float | None = None  # the end of the last read, failed or not
        self._read: asyncio.Task[None] | None = None
        self.waiting = 0  # scrapes now waiting on the read in flight (observable in tests)

    async def body(self) -> bytes:
        """The exposition text: stored while fresh, else after (at most) one queue read."""
        async with self._turn:  # FIFO: the scrapes of a flood queue up here, idle
            delay = self._turn_at + self.spacing_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._turn_at = time.monotonic()
        began = time.monotonic()
        if self._body is not None and began - self._rendered_at < self.refresh_s:
            return self._body
        if self._read is None and (
            self._tried_at is None or began - self._tried_at >= self.refresh_s
        ):
            self._read = asyncio.create_task(self._read_queue(), name="aoer-metrics-read")
        if self._read is not None:
            self.waiting += 1
            try:
                with contextlib.suppress(TimeoutError):
                    # Shielded: a scrape that gives up (or whose client leaves) keeps the
                    # read going for the next one.
                    await asyncio.wait_for(asyncio.shield(self._read), self.wait_s)
            finally:
                self.waiting -= 1
        if self._body is not None and self._rendered_at >= max(began, self._tried_at or 0):
            return self._body  # another scrape rendered after the same read
        return self._render()

    def _render(self) -> bytes:
        now = time.monotonic()
        if self._read_at is not None:
            self.metrics.snapshot_age.set(now - self._read_at)
        self._body = self.metrics.render()
        self._rendered_at = now
        return self._body

    async def _read_queue(self) -> None:
        try:
            async with self.store.session(timeout_s=self.read_timeout_s) as session:
                depth = await session.jobs.depth()
                workers = await session.console.workers(WORKER_STALE_S)
                state = await session.console.queue_state()
        except DatabaseError as exc:
            logger.warning("metrics: cannot read the queue (%s)", exc)
            self.metrics.database_up.set(0)
        except Exception:
            logger.exception("metrics: reading the queue failed")
            self.metrics.database_up.set(0)
        else:
            self.metrics.set_queue_depth(depth)
            self.metrics.set_workers(sum(w.alive for w in workers), state.paused)
            self.metrics.database_up.set(1)
            self._read_at = time.monotonic()
        finally:
            self._tried_at = time.monotonic()
            self._read = None

    async def close(self) -> None:
        """Stop a read in flight (the app is shutting down)."""
        if self._read is not None:
            self._read.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._read
