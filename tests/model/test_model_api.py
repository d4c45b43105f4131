"""The admin model endpoints through the real app: train on demand, read the model, roll back."""

from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest

from aoer.api.auth import TokenService
from aoer.bootstrap.api import build_api
from aoer.config import Settings
from aoer.db.pool import Connection, Pool, connect
from tests.conftest import services_for
from tests.model.synthetic import POLICY, seed

SECRET = "model-api-test-secret-0123456789abcdef"


@pytest.fixture
async def client(pool: Pool, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(  # type: ignore[call-arg]
        AOER_JWT_SECRET=SECRET,
        AOER_MODEL_HOLDOUT_DAYS=POLICY.holdout_days,
        AOER_MODEL_TRAIN_DAYS=POLICY.train_days,
        AOER_MODEL_MIN_ROWS=POLICY.min_rows,
        AOER_MODEL_MIN_HOLDOUT_ROWS=POLICY.min_holdout_rows,
        AOER_MODEL_MIN_TENANTS=POLICY.min_tenants,
    )
    async with (
        build_api(services_for(settings, pool, db_url), cache_namespace=uuid4().hex) as api,
        api.app.router.lifespan_context(api.app),
        httpx.AsyncClient(transport=httpx.ASGITransport(api.app), base_url="http://test") as c,
    ):
        yield c


def bearer(role: str) -> dict[str, str]:
    tenant = {"tenant_id": uuid4()} if role == "tenant" else {}
    return {"Authorization": f"Bearer {TokenService(SECRET).mint(role, **tenant)}"}  # type: ignore[arg-type]


async def test_admin_trains_reads_and_rolls_back_over_http(
    client: httpx.AsyncClient, conn: Connection
) -> None:
    tenants = await seed(conn, outcome="linear")
    admin = bearer("admin")

    dry = await client.post("/api/model/train", json={"dryRun": True}, headers=admin)
    assert dry.status_code == 200, dry.text
    assert dry.json()["decision"] == "promoted"
    assert dry.json()["auditId"] is None

    run = await client.post("/api/model/train", json={}, headers=admin)
    body = run.json()
    assert run.status_code == 200, run.text
    assert (body["decision"], body["resultVersion"], body["requeued"]) == (
        "promoted",
        "v2",
        len(tenants),
    )
    assert body["challengerMetrics"]["rmse"] < body["championMetrics"]["rmse"]
    assert (
        abs(sum(body["challenger"][c] for c in ("seo", "aeo", "geo", "ugc", "geolocal")) - 1) < 1e-9
    )

    status = await client.get("/api/model", headers=admin)
    assert status.status_code == 200, status.text
    assert status.json()["champion"]["version"] == "v2"
    assert status.json()["champion"]["previousVersion"] == "v1"
    [latest] = status.json()["runs"]
    assert (latest["trigger"], latest["decision"], latest["id"]) == (
        "api",
        "promoted",
        body["auditId"],
    )

    back = await client.post("/api/model/rollback", json={}, headers=admin)
    assert back.status_code == 200, back.text
    assert (back.json()["fromVersion"], back.json()["toVersion"]) == ("v2", "v1")
    again = await client.post("/api/model/rollback", json={}, headers=admin)
    assert again.status_code == 409
    assert "nothing to roll back" in again.json()["error"]
    pinned = (await client.get("/api/model", headers=admin)).json()["champion"]
    assert pinned["version"] == "v1"
    assert pinned["pinnedAt"] is not None
    assert pinned["pinnedBy"] is not None

    unpinned = await client.post("/api/model/unpin", json={}, headers=admin)
    assert unpinned.status_code == 200, unpinned.text
    assert (unpinned.json()["version"], unpinned.json()["pinnedAt"]) == ("v1", pinned["pinnedAt"])
    assert (await client.get("/api/model", headers=admin)).json()["champion"]["pinnedAt"] is None
    twice = await client.post("/api/model/unpin", json={}, headers=admin)
    assert twice.status_code == 409
    assert twice.json()["error"] == ("the champion v1 is not pinned: training may already promote")


@pytest.mark.parametrize("role", ["service", "tenant"])
async def test_model_endpoints_are_for_admins_only(client: httpx.AsyncClient, role: str) -> None:
    headers = bearer(role)
    assert (await client.get("/api/model", headers=headers)).status_code == 403
    response = await client.post("/api/model/train", json={}, headers=headers)
    assert response.status_code == 403
    assert (await client.post("/api/model/unpin", json={}, headers=headers)).status_code == 403
    assert "error" in response.json()
    assert (await client.post("/api/model/train", json={})).status_code == 401


async def test_bad_training_requests_are_refused_with_a_reason(client: httpx.AsyncClient) -> None:
    admin = bearer("admin")
    unknown = await client.post("/api/model/train", json={"dryRun": True, "oops": 1}, headers=admin)
    assert unknown.status_code == 422
    future = await client.post("/api/model/train", json={"asOf": "2999-01-01"}, headers=admin)
    assert future.status_code == 400
    assert "in the future" in future.json()["error"]
    form = await client.post("/api/model/train", content=b"dryRun=1", headers=admin)
    assert form.status_code == 415


async def refuse_audit_rows(owner: Connection) -> None:
    """Make every insert into audit_log fail, as a full disk or a broken grant would."""
    await owner.execute(
        "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN RAISE EXCEPTION 'audit_log refused by the test'; END$$"
    )
    await owner.execute(
        "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"
    )


async def champion_and_counts(conn: Connection) -> dict[str, object]:
    cur = await conn.execute(
        "SELECT (SELECT version FROM model_weights WHERE status = 'champion') AS champion,"
        " (SELECT count(*) FROM model_weights) AS versions,"
        " (SELECT count(*) FROM model_audit) AS runs,"
        " (SELECT count(*) FROM aoer_queue) AS jobs,"
        " (SELECT count(*) FROM audit_log WHERE action LIKE 'model.%%') AS trail"
    )
    return dict(await cur.fetchone() or {})


async def test_a_promotion_whose_audit_row_fails_is_not_made(
    client: httpx.AsyncClient, conn: Connection, owner_db_url: str
) -> None:
    await seed(conn, outcome="linear")
    owner = await connect(owner_db_url)
    try:
        await refuse_audit_rows(owner)
    finally:
        await owner.close()

    run = await client.post("/api/model/train", json={}, headers=bearer("admin"))

    assert run.status_code >= 500
    # No champion changed without its audit row: nothing of the run was written.
    assert await champion_and_counts(conn) == {
        "champion": "v1",
        "versions": 1,
        "runs": 0,
        "jobs": 0,
        "trail": 0,
    }


async def test_a_rollback_whose_audit_row_fails_is_not_made_and_a_retry_goes_back_once(
    client: httpx.AsyncClient, conn: Connection, owner_db_url: str
) -> None:
    await seed(conn, outcome="linear")
    admin = bearer("admin")
    assert (await client.post("/api/model/train", json={}, headers=admin)).json()["decision"] == (
        "promoted"
    )
    await conn.execute("DELETE FROM aoer_queue")
    owner = await connect(owner_db_url)
    try:
        await refuse_audit_rows(owner)
        before = await champion_and_counts(conn)

        failed = await client.post("/api/model/rollback", json={}, headers=admin)

        assert failed.status_code >= 500
        assert await champion_and_counts(conn) == before
        assert before["champion"] == "v2"
        await owner.execute("DROP TRIGGER test_refuse_audit ON audit_log")
    finally:
        await owner.close()

    retried = await client.post("/api/model/rollback", json={}, headers=admin)

    assert retried.status_code == 200, retried.text
    assert (retried.json()["fromVersion"], retried.json()["toVersion"]) == ("v2", "v1")
    cur = await conn.execute(
        "SELECT action, target, details ->> 'from' AS from_version FROM audit_log"
        " WHERE action LIKE 'model.%' ORDER BY id"
    )
    assert await cur.fetchall() == [
        {"action": "model.promote", "target": "v2", "from_version": "v1"},
        {"action": "model.rollback", "target": "v1", "from_version": "v2"},
    ]
