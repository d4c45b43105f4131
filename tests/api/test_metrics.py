"""GET /metrics: a snapshot read from the database at most once per refresh interval, one read
at a time; `aoer_database_up` and the snapshot's age when the database is down; the optional
AOER_METRICS_TOKEN."""

import asyncio
import re
import time
from urllib.parse import urlsplit
from uuid import UUID

from aoer.db.pool import Connection, connect
from tests.api.conftest import Api, ApiFactory
from tests.conftest import MakeTenant, eventually

METRICS_TOKEN = "metrics-test-token-0123456789abcdef"


def gauge(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} is not in the exposition"
    return float(found.group(1))


async def scrape(api: Api, headers: dict[str, str] | None = None) -> str:
    response = await api.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def enqueue(api: Api, tenant: UUID) -> None:
    response = await api.client.post(
        "/api/aoer/queue", json={"tenantId": str(tenant), "priority": "high"}, headers=api.admin
    )
    assert response.status_code == 202


QUEUED_HIGH = 'aoer_queue_jobs{priority="high",status="queued"} 1.0'


async def test_scrapes_between_refreshes_are_served_from_the_snapshot(
    make_api: ApiFactory, make_tenant: MakeTenant
) -> None:
    api = await make_api(AOER_METRICS_REFRESH_SECONDS=60)
    tenant = await make_tenant()
    first = await scrape(api)
    assert gauge(first, "aoer_database_up") == 1
    assert gauge(first, "aoer_metrics_snapshot_age_seconds") < 5
    await enqueue(api, tenant)
    for _ in range(5):
        assert await scrape(api) == first, "the same body until the snapshot is refreshed"
    fresh = await make_api(AOER_METRICS_REFRESH_SECONDS=0.2)
    await scrape(fresh)

    async def refreshed() -> bool:
        return QUEUED_HIGH in await scrape(fresh)

    await eventually(refreshed, "a refresh shows the queued job")


async def waiting_queue_reads(conn: Connection) -> int:
    """Backends of this database blocked on a lock while reading aoer_queue."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")  # `conn` is in a transaction
    cur = await conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE '%%FROM aoer_queue%%'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])  # type: ignore[call-overload]


async def test_a_scrape_flood_reads_the_queue_once_at_a_time(
    make_api: ApiFactory, conn: Connection, make_tenant: MakeTenant
) -> None:
    api = await make_api(AOER_METRICS_REFRESH_SECONDS=0)  # every scrape wants a fresh read
    await enqueue(api, await make_tenant())
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE aoer_queue IN ACCESS EXCLUSIVE MODE")  # reads now queue up
    try:
        scrapes = [asyncio.create_task(api.client.get("/metrics")) for _ in range(20)]

        async def one_read_blocked() -> bool:
            return await waiting_queue_reads(conn) >= 1

        await eventually(one_read_blocked, "the first queue read waits on the lock")
        snapshot = api.ctx.metrics_snapshot
        await eventually(lambda: snapshot.waiting >= 5, "several scrapes wait on that read")
        assert await waiting_queue_reads(conn) == 1, "the scrapes share one read"
    finally:
        await conn.execute("ROLLBACK")
    answers = await asyncio.gather(*scrapes)
    assert {r.status_code for r in answers} == {200}
    assert all(QUEUED_HIGH in r.text for r in answers), "each answer carries that one read"


async def test_a_scrape_does_not_wait_on_a_stuck_database(
    make_api: ApiFactory, conn: Connection
) -> None:
    api = await make_api(AOER_METRICS_REFRESH_SECONDS=0)
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE aoer_queue IN ACCESS EXCLUSIVE MODE")
    try:
        started = time.perf_counter()
        text = await scrape(api)
        waited = time.perf_counter() - started
    finally:
        await conn.execute("ROLLBACK")
    assert waited < 4, f"a scrape waited {waited:.1f} s on a blocked read"
    assert gauge(text, "aoer_metrics_snapshot_age_seconds") == float("inf"), "never read yet"


async def test_a_database_outage_shows_as_down_with_a_growing_snapshot_age(
    make_api: ApiFactory, db_url: str, server_url: str
) -> None:
    api = await make_api(AOER_METRICS_REFRESH_SECONDS=0.1)
    assert gauge(await scrape(api), "aoer_database_up") == 1
    name = urlsplit(db_url).path.lstrip("/")
    admin = await connect(server_url)
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')  # type: ignore[arg-type]
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        ages: list[float] = []

        async def down_and_ageing() -> bool:
            text = await scrape(api)
            if gauge(text, "aoer_database_up") != 0:
                return False
            ages.append(gauge(text, "aoer_metrics_snapshot_age_seconds"))
            return len(ages) >= 2 and ages[-1] > ages[0] > 0

        await eventually(down_and_ageing, "aoer_database_up is 0 and the age grows", 20)
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')  # type: ignore[arg-type]
        await admin.close()

    async def back_up() -> bool:
        text = await scrape(api)
        fresh = gauge(text, "aoer_metrics_snapshot_age_seconds") < ages[0]
        return gauge(text, "aoer_database_up") == 1 and fresh

    await eventually(back_up, "aoer_database_up is 1 once the database is back", 20)


async def test_a_metrics_token_closes_the_endpoint(make_api: ApiFactory) -> None:
    api = await make_api(AOER_METRICS_TOKEN=METRICS_TOKEN)
    for headers in (
        None,
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        api.admin,  # an API token is not the metrics token
    ):
        refused = await api.client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert "AOER_METRICS_TOKEN" in refused.json()["error"]
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    text = await scrape(api, {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert "aoer_database_up 1.0" in text


async def test_without_a_metrics_token_the_endpoint_is_open(api: Api) -> None:
    assert api.ctx.settings.metrics_token is None
    assert "aoer_database_up" in await scrape(api)
    assert "aoer_database_up" in await scrape(api, {"Authorization": "Bearer anything"})


async def test_a_scrape_flood_is_answered_a_few_at_a_time(make_api: ApiFactory) -> None:
    api = await make_api(AOER_METRICS_REFRESH_SECONDS=60)  # the body is stored: cheap to serve
    await scrape(api)
    started = time.perf_counter()
    answers = await asyncio.gather(*(api.client.get("/metrics") for _ in range(11)))
    elapsed = time.perf_counter() - started
    assert {r.status_code for r in answers} == {200}
    # 20 scrapes a second at most (SCRAPE_SPACING_S): 11 at once take half a second.
    assert elapsed >= 0.45, f"11 scrapes answered within {elapsed:.2f} s"


async def test_live_workers_and_the_pause_are_gauges_a_pager_can_watch(
    make_api: ApiFactory, conn: Connection
) -> None:
    """With no worker alive nothing is recomputed and the scheduler and alert delivery (inside
    workers) raise nothing: /metrics is where a pager can see it."""
    api = await make_api(AOER_METRICS_REFRESH_SECONDS=0.1)
    first = await scrape(api)
    assert (gauge(first, "aoer_workers_live"), gauge(first, "aoer_queue_paused")) == (0, 0)
    await conn.execute(
        "INSERT INTO aoer_workers (id, host, pid, jobs_in_hand, last_heartbeat_at) VALUES"
        " ('w-live', 'h1', 11, 3, now()), ('w-dead', 'h2', 12, 0, now() - interval '1 hour')"
    )
    await api.client.post("/api/queue/pause", headers=api.admin)

    async def seen() -> bool:
        text = await scrape(api)
        return (gauge(text, "aoer_workers_live"), gauge(text, "aoer_queue_paused")) == (1, 1)

    await eventually(seen, "one live worker and the pause in the gauges")
