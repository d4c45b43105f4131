"""After the database drops every connection (a restart), the API's next requests succeed:
pooled connections are checked when lent, so a dead one is replaced, not handed out."""

import asyncio

from aoer.db.pool import Connection, connect
from tests.api.conftest import Api, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant

SIGNALS = [{"days_ago": 1, "aeo": "40", "geo": "40", "ugc": "40"}]


async def drop_other_connections(conn: Connection) -> int:
    """End every other session of the database, as a restart does, and wait until they are
    gone (as a restart is over before requests come back): a connection whose backend is
    ending at the very moment it is lent fails its request, as one in flight would."""
    cur = await conn.execute(
        "SELECT count(pg_terminate_backend(pid, 10000)) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend' AND query NOT LIKE 'LISTEN%%'"
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0  # type: ignore[call-overload]


async def test_no_request_fails_after_the_pools_connections_are_dropped(
    api: Api, conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> None:
    tenant = await make_tenant()
    await add_signals(tenant, SIGNALS)
    await recompute_through_worker(conn, [tenant])
    api.ctx.cache.enabled = False  # every read below goes to the database
    reads = [
        ("/readyz", {}),
        ("/api/aoer/summary", {"tenantId": str(tenant)}),
        ("/api/aoer/queue", {"tenantId": str(tenant)}),
        ("/api/tenants", {}),
    ]
    for path, params in reads:  # fill the pool with live connections
        assert (await api.client.get(path, params=params, headers=api.admin)).status_code == 200
    assert await drop_other_connections(conn) >= 1
    for path, params in reads * 3:
        response = await api.client.get(path, params=params, headers=api.admin)
        assert response.status_code == 200, (path, response.text)


async def test_an_enqueue_behind_a_held_job_is_refused_fast_with_retry_after(
    api: Api, conn: Connection, db_url: str, make_tenant: MakeTenant
) -> None:
    """A worker frozen mid-claim holds the tenant's waiting job: the enqueue is answered 503
    with Retry-After after the API's short lock wait, not left hanging."""
    tenant = await make_tenant()
    body = {"tenantId": str(tenant), "priority": "low"}
    assert (
        await api.client.post("/api/aoer/queue", json=body, headers=api.admin)
    ).status_code == 202
    holder = await connect(db_url, autocommit=False)
    try:
        await holder.execute(
            "UPDATE aoer_queue SET status = 'processing', locked_by = 'hung',"
            " lease_expires_at = now() + interval '30 seconds' WHERE tenant_id = %s",
            (tenant,),
        )
        body["priority"] = "urgent"
        response = await asyncio.wait_for(
            api.client.post("/api/aoer/queue", json=body, headers=api.admin), 10
        )
    finally:
        await holder.close()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]
