"""After the database drops every connection (a restart), the API's next requests succeed:
pooled connections are checked when lent, so a dead one is replaced, not handed out."""

from aoer.db.pool import Connection
from tests.api.conftest import Api, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant

SIGNALS = [{"days_ago": 1, "aeo": "40", "geo": "40", "ugc": "40"}]


async def drop_other_connections(conn: Connection) -> int:
    cur = await conn.execute(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
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
