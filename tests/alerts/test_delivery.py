"""Deliveries to a real receiver process and a real SMTP server (DESIGN §13)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_network
from typing import Any
from uuid import UUID

import pytest

from aoer import queue
from aoer.alerts.addresses import AddressPolicy
from aoer.alerts.delivery import CLAIM_CONNECTION_WAIT_S, Deliverer, DeliveryPolicy
from aoer.alerts.webhooks import MAX_ERROR_CHARS
from aoer.db.pool import Connection, open_pool
from aoer.store import Store
from tests.alerts.conftest import Receiver, SmtpServer
from tests.conftest import eventually, session_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    # The test SMTP server asks for a login over plain TCP (no certificate to offer STARTTLS).
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

WORKER = "delivery-test-worker"


def policy(**overrides: Any) -> DeliveryPolicy:
    values: dict[str, Any] = {
        "retry_base_s": 0.2,
        "retry_window_s": 60.0,
        "lease_s": 30.0,
        "http_timeout_s": 5.0,
        "max_in_flight": 16,
        "smtp_url": None,
        "smtp_from": "alerts@example.com",
        # The receivers listen on 127.0.0.1, as an operator's allowed network
        "addresses": AddressPolicy((ip_network("127.0.0.0/8"),)),
    }
    values.update(overrides)
    return DeliveryPolicy(**values)


@asynccontextmanager
async def delivering(store: Store, delivery_policy: DeliveryPolicy) -> AsyncIterator[Deliverer]:
    deliverer = Deliverer(store, delivery_policy, WORKER)
    stopping = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stopping))
    try:
        yield deliverer
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


async def scalar(conn: Connection, sql: str, *params: object) -> Any:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    row = await cur.fetchone()
    assert row is not None
    return next(iter(row.values()))


async def endpoint_row(conn: Connection, org: UUID, url: str, secret: str) -> UUID:
    """An organisation's endpoint written as it is, past the API's checks; its id."""
    endpoint: UUID = await scalar(
        conn,
        "INSERT INTO alert_endpoints (org_id, url, secret, created_by)"
        " VALUES (%s, %s, %s, 'test') RETURNING id",
        org,
        url,
        secret,
    )
    return endpoint


async def fleet_crossing_risk(
    conn: Connection, tenants: int, *, url: str | None, secret: str | None, emails: list[str]
) -> list[UUID]:
    """`tenants` dealerships in one organisation with a risk_level_up rule; each is recomputed
    at Low risk, then loses data and is recomputed at High in ONE batch. Returns their ids."""
    org = await scalar(conn, "INSERT INTO organizations (name) VALUES ('Fleet') RETURNING id")
    cur = await conn.execute(
        "INSERT INTO tenants (name, org_id) SELECT 'Dealer ' || g, %s"
        " FROM generate_series(1, %s) g RETURNING id",
        (org, tenants),
    )
    ids = [r["id"] for r in await cur.fetchall()]
    await conn.execute(
        "INSERT INTO aiv_raw_signals (dealer_id, date, aeo, geo, ugc)"
        " SELECT t, current_date - d, 80, 80, 80 FROM unnest(%s::uuid[]) t,"
        " generate_series(0, 9) d",
        (ids,),
    )
    endpoint_ids: list[UUID] = []
    if url is not None:
        assert secret is not None
        endpoint_ids.append(await endpoint_row(conn, org, url, secret))
    await conn.execute(
        "INSERT INTO alert_rules (scope, org_id, kind, endpoint_ids, emails, created_by)"
        " VALUES ('org', %s, 'risk_level_up', %s, %s, 'test')",
        (org, endpoint_ids, emails),
    )
    await recompute(conn, ids)
    await conn.execute(
        "DELETE FROM aiv_raw_signals WHERE dealer_id = ANY (%s) AND date < current_date - 1",
        (ids,),
    )
    await recompute(conn, ids)
    return ids


async def recompute(conn: Connection, tenant_ids: list[UUID]) -> None:
    await queue.enqueue_many(session_of(conn), tenant_ids, "high")
    jobs = await session_of(conn, lease_s=30).jobs.claim(WORKER, len(tenant_ids))
    assert len(jobs) == len(tenant_ids)
    await queue.process_batch(session_of(conn), WORKER, jobs)


async def test_a_thousand_tenants_crossing_in_one_batch_are_each_delivered_once(
    conn: Connection, store: Store, receiver: Receiver
) -> None:
    receiver.start()
    await fleet_crossing_risk(conn, 1000, url=receiver.url, secret=receiver.secret, emails=[])
    assert await scalar(conn, "SELECT count(*) FROM alerts") == 1000
    assert await scalar(conn, "SELECT count(*) FROM alert_deliveries") == 1000
    public = "https://aoer.example.com"
    async with delivering(store, policy(public_url=public)):
        await eventually(
            lambda: len(receiver.delivered_ids()) >= 1000, "1,000 webhooks delivered", 90
        )
        await eventually(
            lambda: scalar(
                conn, "SELECT count(*) = 1000 FROM alert_deliveries WHERE status = 'delivered'"
            ),
            "every delivery recorded as delivered",
        )
    records = receiver.records()
    assert all(r["verified"] for r in records), "every signature checks out"
    delivered = receiver.delivered_ids()
    assert len(delivered) == len(set(delivered)) == 1000, "each exactly once"
    cur = await conn.execute("SELECT id::text AS id, attempts FROM alert_deliveries")
    rows = await cur.fetchall()
    assert {r["id"] for r in rows} == set(delivered), "webhook-id is the delivery's id"
    assert all(r["attempts"] >= 1 for r in rows)
    body = records[0]["payload"]
    assert body["type"] == "alert.risk_level_up"
    # A line a person reads, and the dealership's page (a receiver relaying it to a chat
    # had only raw fields to show).
    data = body["data"]
    assert body["message"] == (
        f"{data['tenantName']}: Visibility risk rose:"
        f" risk {data['previous']['visibilityRisk']:.2f} (Low)"
        f" → {data['current']['visibilityRisk']:.2f} (High)"
    )
    assert body["url"] == f"{public}/dashboard/tenant/{data['tenantId']}"
    assert set(body["data"]) >= {"alertId", "ruleId", "tenantId", "tenantName", "kind",
                                 "previous", "current"}  # fmt: skip
    assert body["data"]["previous"]["riskLevel"] == "Low"
    assert body["data"]["current"]["riskLevel"] == "High"


async def test_a_receiver_down_for_a_while_gets_each_alert_once_when_it_returns(
    conn: Connection, store: Store, receiver: Receiver
) -> None:
    await fleet_crossing_risk(conn, 3, url=receiver.url, secret=receiver.secret, emails=[])
    async with delivering(store, policy(retry_base_s=0.3)):
        await eventually(
            lambda: scalar(
                conn,
                "SELECT bool_and(attempts >= 3 AND status = 'pending'"
                " AND last_error IS NOT NULL) FROM alert_deliveries",
            ),
            "three refused attempts each, still pending",
            30,
        )
        cur = await conn.execute("SELECT next_attempt_at - now() AS wait FROM alert_deliveries")
        assert all(r["wait"].total_seconds() > 0 for r in await cur.fetchall()), "backing off"
        receiver.start()
        await eventually(
            lambda: scalar(conn, "SELECT bool_and(status = 'delivered') FROM alert_deliveries"),
            "delivered once the receiver is back",
            30,
        )
    delivered = receiver.delivered_ids()
    assert len(delivered) == len(set(delivered)) == 3


async def test_a_receiver_failing_forever_ends_failed_after_the_window(
    conn: Connection, store: Store, receiver: Receiver
) -> None:
    receiver.mode("fail")
    receiver.start()
    await fleet_crossing_risk(conn, 2, url=receiver.url, secret=receiver.secret, emails=[])
    async with delivering(store, policy(retry_base_s=0.2, retry_window_s=2.0)):
        await eventually(
            lambda: scalar(conn, "SELECT bool_and(status = 'failed') FROM alert_deliveries"),
            "failed after the retry window",
            30,
        )
    cur = await conn.execute("SELECT attempts, last_status_code, last_error FROM alert_deliveries")
    for row in await cur.fetchall():
        assert row["attempts"] >= 2
        assert row["last_status_code"] == 500
        assert row["last_error"].startswith("HTTP 500")
    assert receiver.delivered_ids() == []
    assert all(r["status"] == 500 and r["verified"] for r in receiver.records())


@pytest.mark.parametrize("mode", ["trickle", "flood"])
async def test_a_receiver_that_never_finishes_answering_costs_one_timeout_an_attempt(
    conn: Connection, store: Store, receiver: Receiver, mode: str
) -> None:
    """A receiver sending its answer a byte every half second (each read within the timeout)
    or an endless error body: the attempt ends within the timeout as a failed one, is sent
    once, and its lease is never outlived (which would have another worker send it too)."""
    receiver.mode(mode)
    receiver.start()
    await fleet_crossing_risk(conn, 1, url=receiver.url, secret=receiver.secret, emails=[])
    deliverer = Deliverer(store, policy(http_timeout_s=1.0, lease_s=30.0), WORKER)
    stats = await asyncio.wait_for(deliverer.drain(), 10)
    assert (stats.delivered, stats.retried, stats.failed) == (0, 1, 0)
    cur = await conn.execute(
        "SELECT status, attempts, last_status_code, last_error FROM alert_deliveries"
    )
    row = await cur.fetchone()
    assert row is not None
    assert (row["status"], row["attempts"]) == ("pending", 1)
    if mode == "trickle":
        assert row["last_status_code"] is None
        assert row["last_error"] == "timed out: no whole answer within 1 s"
    else:
        assert row["last_status_code"] == 500
        assert row["last_error"] == "HTTP 500 " + "x" * MAX_ERROR_CHARS
    assert [r["status"] for r in receiver.records()] == [mode]


async def test_alert_email_goes_through_smtp_with_login(
    conn: Connection, store: Store, smtp_server: SmtpServer
) -> None:
    await fleet_crossing_risk(conn, 2, url=None, secret=None, emails=["ops@example.com"])
    public = "https://aoer.example.com"
    async with delivering(store, policy(smtp_url=smtp_server.url, public_url=public)):
        await eventually(
            lambda: scalar(conn, "SELECT bool_and(status = 'delivered') FROM alert_deliveries"),
            "both e-mails delivered",
        )
    messages = smtp_server.mailbox.messages
    assert len(messages) == 2
    assert {m["To"] for m in messages} == {"ops@example.com"}
    assert all("visibility risk rose" in m["Subject"] for m in messages)
    text = messages[0].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Visibility risk: 0.20 (Low) -> 0.80 (High)" in text
    # What happened in the feed's words, a link to the page that says why and what to do,
    # and the Date header every message must carry (RFC 5322).
    bodies = [m.get_payload(decode=True).decode().splitlines() for m in messages]  # type: ignore[union-attr]
    assert all("Visibility risk rose: risk 0.20 (Low) → 0.80 (High)." in b for b in bodies)
    cur = await conn.execute("SELECT tenant_id FROM alerts")
    tenants = {r["tenant_id"] for r in await cur.fetchall()}
    links = {line for body in bodies for line in body if line.startswith("Why it moved")}
    assert links == {f"Why it moved and what to do: {public}/dashboard/tenant/{t}" for t in tenants}
    assert all(m["Date"] for m in messages)


async def test_e_mail_without_an_smtp_server_is_retried_not_lost(
    conn: Connection, store: Store
) -> None:
    await fleet_crossing_risk(conn, 1, url=None, secret=None, emails=["ops@example.com"])
    async with delivering(store, policy(smtp_url=None)):
        await eventually(
            lambda: scalar(conn, "SELECT attempts >= 1 FROM alert_deliveries"),
            "an attempt",
        )
    row = await scalar(conn, "SELECT status || ': ' || last_error FROM alert_deliveries")
    assert row == "pending: AOER_SMTP_URL is not set: cannot send e-mail"


async def test_a_loop_told_to_stop_while_it_waits_for_a_connection_ends_by_itself(
    db_url: str,
) -> None:
    """`aoer up` losing its database stops the delivery loop while its claim waits for a
    pooled connection that will never come. The wait is bounded, so the loop ends on its
    own (cancelling a task that waits on the pool once left `aoer up` hanging at exit)."""
    async with open_pool(db_url, max_size=1) as pool:
        store = Store(pool, db_url)
        async with pool.connection():  # the only connection: every claim round must wait
            stopping = asyncio.Event()
            task = asyncio.create_task(Deliverer(store, policy(), WORKER).run(stopping))
            await eventually(
                lambda: pool.get_stats().get("requests_waiting", 0) >= 1,
                "the first claim round waiting for the connection",
                5,
            )
            stopping.set()
            await asyncio.wait_for(task, CLAIM_CONNECTION_WAIT_S + 2)


async def test_a_wake_up_heard_while_the_loop_looks_for_work_is_not_lost(store: Store) -> None:
    """A NOTIFY heard while the loop asks for its next due delivery (after a claim found
    none) starts the next claim at once; it was cleared as the pause began, and the new
    delivery waited for the 5 s poll."""

    class HearsOneWhileLooking(Deliverer):
        rounds = 0

        async def _claim_round(self) -> int:
            self.rounds += 1
            return await super()._claim_round()

        async def _listen(self) -> None:
            await asyncio.Event().wait()  # no listener: only the wake-up below wakes the loop

        async def _until_next_due(self) -> float:
            if self.rounds == 1:
                self._wake.set()  # what the listener does on a NOTIFY, mid-look-up
            return 30.0

    deliverer = HearsOneWhileLooking(store, policy(), WORKER)
    stopping = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stopping))
    try:
        await eventually(lambda: deliverer.rounds >= 2, "a second claim round at once", 3)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
