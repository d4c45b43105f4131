"""The delivery loop every worker runs beside its recompute slots (DESIGN §13).

It claims due deliveries in small batches (SKIP LOCKED, under a lease), sends each one — a
signed webhook or an e-mail — as its own task, at most `max_in_flight` at a time, and records
each outcome as soon as it is known: delivered on 2xx, else due again after an exponential
backoff, or `failed` once the retry window is spent. It holds a pooled connection only for
the few milliseconds of a claim or a settle, never while a receiver answers, and its requests
have timeouts: a slow or dead receiver costs recomputes nothing.

A worker that dies mid-send leaves its claimed rows leased; they fall due again when the lease
runs out and another worker sends them (at least once; `webhook-id` lets receivers drop a
repeat). NOTIFY on `aoer_alerts` wakes the loop; a timer for the next due retry and a slow poll
are the net.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from aoer.alerts import email, webhooks
from aoer.alerts.addresses import AddressPolicy
from aoer.alerts.webhooks import Attempt
from aoer.config import Settings
from aoer.constants import (
    ALERT_CHANNEL,
    ALERT_CLAIM_BATCH,
    ALERT_POLL_S,
    ALERT_RETRY_CAP_S,
    ALERT_SMTP_TIMEOUT_S,
    BACKOFF_JITTER,
)
from aoer.errors import DatabaseError, InvalidInput, TransientDatabaseError
from aoer.store import Store
from aoer.store.alerts import ClaimedDelivery

logger = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0
ERROR_PAUSE_S = 1.0
# How long a claim round (and the look-up of the next due delivery) waits for a pooled
# connection. Bounded, so a loop told to stop while the database is gone ends by itself
# within it: cancelling a task that waits on the pool could leave `aoer up` hanging at exit
# (seen under CPU load: the task never finished).
CLAIM_CONNECTION_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    retry_base_s: float
    retry_window_s: float
    lease_s: float
    http_timeout_s: float
    max_in_flight: int
    smtp_url: str | None
    smtp_from: str
    public_url: str | None = None  # AOER_PUBLIC_URL: e-mails link to the dealership's page
    # Where an organisation's endpoints may be sent to (alerts/addresses.py)
    addresses: AddressPolicy = field(default_factory=AddressPolicy)

    @property
    def smtp_timeout_s(self) -> float:
        """The bound on one e-mail's whole attempt: the SMTP timeout, or half the lease when
        that is shorter (no message still being sent when its lease runs out)."""
        return min(ALERT_SMTP_TIMEOUT_S, self.lease_s / 2)

    @classmethod
    def from_settings(cls, settings: Settings) -> "DeliveryPolicy":
        return cls(
            retry_base_s=settings.alert_retry_base_s,
            retry_window_s=settings.alert_retry_window_s,
            lease_s=settings.alert_lease_s,
            http_timeout_s=settings.alert_http_timeout_s,
            max_in_flight=settings.alert_max_in_flight,
            smtp_url=settings.smtp_url,
            smtp_from=settings.smtp_from,
            public_url=settings.public_url,
            addresses=AddressPolicy.from_settings(settings),
        )


def retry_delay_s(attempts: int, base_s: float, rng: random.Random | None = None) -> float:
    """The pause after the `attempts`-th failed attempt: base doubling, capped, jittered."""
    delay = min(base_s * 2 ** max(attempts - 1, 0), ALERT_RETRY_CAP_S)
    return float(delay * (1 + BACKOFF_JITTER * (rng or random).random()))


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class Deliverer:
    def __init__(self, store: Store, policy: DeliveryPolicy, worker_id: str) -> None:
        self.store = store
        self.policy = policy
        self.worker_id = worker_id
        self.stats = DeliveryStats()
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_free = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._org_client: httpx.AsyncClient | None = None  # an organisation's endpoints
        self._smtp = email.parse_smtp_url(policy.smtp_url) if policy.smtp_url else None

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping` is set; then let the sends in flight finish (each is
        bounded by its timeout)."""
        listener = asyncio.create_task(self._listen(), name="aoer-alert-listener")
        async with self._http():
            try:
                while not stopping.is_set():
                    # Cleared before the claim, not when the loop pauses after it: a NOTIFY
                    # heard during the claim or the look-up of the next due delivery ends
                    # the pause at once instead of waiting for the poll.
                    self._wake.clear()
                    try:
                        claimed = await self._claim_round()
                    except asyncio.CancelledError:
                        raise
                    except TransientDatabaseError as exc:
                        logger.warning("[AOER] alert delivery: %s; retrying", exc)
                        claimed = 0
                        await self._pause(stopping, ERROR_PAUSE_S)
                    except Exception:
                        logger.exception("[AOER] alert delivery error; retrying")
                        claimed = 0
                        await self._pause(stopping, ERROR_PAUSE_S)
                    if claimed:
                        continue
                    await self._pause(stopping, await self._until_next_due())
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
                await self._finish_in_flight()

    async def drain(self) -> DeliveryStats:
        """Send every delivery due now, then return (tests, `aoer worker --drain`)."""
        async with self._http():
            while await self._claim_round():
                pass
            await self._finish_in_flight()
        return self.stats

    @contextlib.asynccontextmanager
    async def _http(self) -> AsyncIterator[None]:
        timeout_s, connections = self.policy.http_timeout_s, self.policy.max_in_flight
        async with (
            webhooks.client(timeout_s, connections) as client,
            webhooks.client(timeout_s, connections, self.policy.addresses) as org_client,
        ):
            self._client, self._org_client = client, org_client
            try:
                yield
            finally:
                self._client = self._org_client = None

    async def _pause(self, stopping: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _until_next_due(self) -> float:
        try:
            async with self.store.session(timeout_s=CLAIM_CONNECTION_WAIT_S) as session:
                due_at = await session.alerts.next_delivery_due()
        except DatabaseError:
            return ALERT_POLL_S
        if due_at is None:
            return ALERT_POLL_S
        seconds = (due_at - datetime.now(UTC)).total_seconds()
        return min(max(seconds, 0.01), ALERT_POLL_S)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.store.listen(ALERT_CHANNEL) as notifications:
                    self._wake.set()  # anything raised while we were not listening
                    async for _ in notifications:
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except (DatabaseError, OSError) as exc:
                logger.warning("alert listener lost its connection (%s); reconnecting", exc)
            await asyncio.sleep(RECONNECT_DELAY_S)

    async def _claim_round(self) -> int:
        """Claim as many due deliveries as there are free slots and start sending them;
        how many were claimed. Waits for a slot when all are busy."""
        while len(self._in_flight) >= self.policy.max_in_flight:
            self._slot_free.clear()
            await self._slot_free.wait()
        limit = min(ALERT_CLAIM_BATCH, self.policy.max_in_flight - len(self._in_flight))
        async with self.store.session(timeout_s=CLAIM_CONNECTION_WAIT_S) as session:
            claimed = await session.alerts.claim_deliveries(
                self.worker_id, limit, self.policy.lease_s
            )
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_free.set()

    async def _finish_in_flight(self) -> None:
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self.policy.http_timeout_s * 2)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            attempt = await self._send(delivery)
        except Exception as exc:  # a bug must not leave the row leased for good
            logger.exception("[AOER] alert delivery %s crashed", delivery.id)
            attempt = Attempt(False, None, f"internal error: {type(exc).__name__}")
        await self._settle(delivery, attempt)

    async def _send(self, delivery: ClaimedDelivery) -> Attempt:
        if delivery.endpoint_id is not None:
            http = self._client if delivery.endpoint_org_id is None else self._org_client
            if delivery.url is None or delivery.secret is None or http is None:
                return Attempt(False, None, "endpoint deleted")
            body = webhooks.alert_body(
                delivery.kind,
                delivery.alert_created_at,
                delivery.data,
                dashboard_url=self.policy.public_url,
            )
            return await webhooks.post(
                http,
                delivery.url,
                delivery.secret,
                str(delivery.id),
                body,
                self.policy.http_timeout_s,
            )
        if delivery.email is None:
            return Attempt(False, None, "no endpoint and no address")
        if self._smtp is None:
            return Attempt(False, None, "AOER_SMTP_URL is not set: cannot send e-mail")
        try:
            message = email.alert_message(
                self.policy.smtp_from,
                delivery.email,
                str(delivery.id),
                delivery.kind,
                delivery.data,
                dashboard_url=self.policy.public_url,
            )
        except (InvalidInput, ValueError) as exc:
            return Attempt(False, None, f"bad message: {exc}")
        return await email.send(self._smtp, message, self.policy.smtp_timeout_s)

    async def _settle(self, delivery: ClaimedDelivery, attempt: Attempt) -> None:
        give_up = attempt.error == "endpoint deleted"
        delay = 0.0 if attempt.ok else retry_delay_s(delivery.attempts, self.policy.retry_base_s)
        try:
            async with self.store.session() as session:
                status = await session.alerts.settle_delivery(
                    self.worker_id,
                    delivery.id,
                    ok=attempt.ok,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    delay_s=delay,
                    window_s=self.policy.retry_window_s,
                    give_up=give_up,
                )
        except DatabaseError as exc:
            # The row stays leased: it falls due again when the lease runs out.
            logger.warning("[AOER] could not record delivery %s: %s", delivery.id, exc)
            return
        if status == "delivered":
            self.stats.delivered += 1
        elif status == "failed":
            self.stats.failed += 1
            logger.warning(
                "[AOER] alert delivery %s failed for good after %d attempts: %s",
                delivery.id,
                delivery.attempts,
                attempt.error,
                extra={"action": "alert_failed"},
            )
        elif status == "pending":
            self.stats.retried += 1
            logger.info(
                "[AOER] alert delivery %s attempt %d failed (%s); retrying in %.1fs",
                delivery.id,
                delivery.attempts,
                attempt.error,
                delay,
                extra={"action": "alert_retry"},
            )
