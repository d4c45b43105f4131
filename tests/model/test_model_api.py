"""The admin model endpoints through the real app: train on demand, read the model, roll back."""

from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest

from aoer.api.auth import TokenService
from aoer.bootstrap.api import build_api
from aoer.config import Settings
from aoer.db.pool import Connection, Pool
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


@pytest.mark.parametrize("role", ["service", "tenant"])
async def test_model_endpoints_are_for_admins_only(client: httpx.AsyncClient, role: str) -> None:
    headers = bearer(role)
    assert (await client.get("/api/model", headers=headers)).status_code == 403
    response = await client.post("/api/model/train", json={}, headers=headers)
    assert response.status_code == 403
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
