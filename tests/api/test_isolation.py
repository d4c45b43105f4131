"""Tenant isolation over HTTP, for every endpoint: no token, a bad or expired token → 401; a
tenant token on another tenant, or a role the endpoint does not allow → 403."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import jwt
import pytest

from aoer.api.auth import LOGIN_PURPOSE, SESSION_COOKIE
from aoer.db.pool import Connection
from tests.api.conftest import CRON_SECRET, JWT_SECRET, Api, recompute_through_worker
from tests.conftest import AddSignals, MakeTenant, utc_today


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    roles: tuple[str, ...]  # roles allowed (tenant: on its own tenant only)
    success: int
    tenant_scoped: bool = True  # names one tenant (query or body)
    streams: bool = False  # success never ends: only refusals are checked in-process

    def request(self, client: httpx.AsyncClient, tenant: UUID, **kw: Any) -> Any:
        tid = str(tenant)
        if self.method == "POST" and self.path == "/api/aoer/queue":
            return client.post(self.path, json={"tenantId": tid}, **kw)
        if self.method == "POST" and self.path == "/api/signals":
            row = {"dealerId": tid, "date": str(utc_today() - timedelta(1)), "aeo": 70}
            return client.post(self.path, json={"signals": [row]}, **kw)
        if self.method == "POST" and self.path == "/api/tenants":
            return client.post(self.path, json={"name": "New Motors"}, **kw)
        params = {"tenantId": tid} if self.tenant_scoped else {}
        return client.request(self.method, self.path, params=params, **kw)


ENDPOINTS = [
    Endpoint("POST", "/api/aoer/queue", ("admin", "service", "tenant"), 202),
    Endpoint("GET", "/api/aoer/queue", ("admin", "tenant"), 200),
    Endpoint("GET", "/api/aoer/summary", ("admin", "tenant"), 200),
    Endpoint("GET", "/api/aoer/history", ("admin", "tenant"), 200),
    Endpoint("GET", "/api/aoer/stream", ("admin", "tenant"), 200, streams=True),
    Endpoint("POST", "/api/signals", ("admin", "service", "tenant"), 200),
    Endpoint("GET", "/api/tenants", ("admin", "service", "tenant"), 200, tenant_scoped=False),
    Endpoint("POST", "/api/tenants", ("admin",), 201, tenant_scoped=False),
    Endpoint("GET", "/api/aoer/cron", ("admin", "service"), 200, tenant_scoped=False),
]
IDS = [f"{e.method} {e.path}" for e in ENDPOINTS]
SCOPED = [e for e in ENDPOINTS if e.tenant_scoped]


@pytest.fixture
async def tenants(
    conn: Connection, make_tenant: MakeTenant, add_signals: AddSignals
) -> tuple[UUID, UUID]:
    a, b = await make_tenant("A Motors"), await make_tenant("B Motors")
    for t in (a, b):
        await add_signals(t, [{"days_ago": d, "aeo": "60", "geo": "50"} for d in range(6)])
    await recompute_through_worker(conn, [a, b])
    return a, b


def bad_credentials(api: Api) -> dict[str, dict[str, str]]:
    expired = api.tokens.mint("admin", ttl=timedelta(seconds=1))
    expired = jwt.encode(
        {**jwt.decode(expired, JWT_SECRET, algorithms=["HS256"]), "exp": 1_000_000_000},
        JWT_SECRET,
    )
    forged = jwt.encode({"sub": "x", "role": "admin", "exp": 4_000_000_000}, "w" * 40)
    login_only = api.tokens.mint("admin", purpose=LOGIN_PURPOSE)
    return {
        "missing": {},
        "not a JWT": {"Authorization": "Bearer not-a-jwt"},
        "wrong scheme": {"Authorization": f"Basic {api.tokens.mint('admin')}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "wrong secret": {"Authorization": f"Bearer {forged}"},
        "login link token": {"Authorization": f"Bearer {login_only}"},
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
async def test_missing_invalid_or_expired_credentials_get_401(
    api: Api, tenants: tuple[UUID, UUID], endpoint: Endpoint
) -> None:
    a, _ = tenants
    for label, headers in bad_credentials(api).items():
        response = await endpoint.request(api.client, a, headers=headers)
        assert response.status_code == 401, (label, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert set(response.json()) == {"error"}, label


@pytest.mark.parametrize("endpoint", SCOPED, ids=[f"{e.method} {e.path}" for e in SCOPED])
async def test_a_tenant_token_on_another_tenant_gets_403_and_changes_nothing(
    api: Api, conn: Connection, tenants: tuple[UUID, UUID], endpoint: Endpoint
) -> None:
    a, b = tenants
    before = await snapshot(conn)
    response = await endpoint.request(api.client, b, headers=api.bearer(tenant=a))
    assert response.status_code == 403, response.text
    assert "another tenant" in response.json()["error"]
    assert await snapshot(conn) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
async def test_each_role_gets_exactly_what_the_endpoint_allows(
    api: Api, tenants: tuple[UUID, UUID], endpoint: Endpoint
) -> None:
    a, _ = tenants
    for role in ("admin", "service", "tenant"):
        headers = api.bearer(tenant=a) if role == "tenant" else api.bearer(role)
        if role in endpoint.roles and endpoint.streams:
            continue  # an endless stream; tests/api/test_stream.py covers it on a socket
        response = await endpoint.request(api.client, a, headers=headers)
        expected = endpoint.success if role in endpoint.roles else 403
        assert response.status_code == expected, (role, response.text)


async def test_tenant_lists_only_its_own_tenant(api: Api, tenants: tuple[UUID, UUID]) -> None:
    a, _ = tenants
    mine = await api.client.get("/api/tenants", headers=api.bearer(tenant=a))
    assert [t["id"] for t in mine.json()["tenants"]] == [str(a)]
    everyone = await api.client.get("/api/tenants", headers=api.admin)
    assert len(everyone.json()["tenants"]) == 2


async def test_tenant_token_may_not_send_another_tenants_signal_rows(
    api: Api, conn: Connection, tenants: tuple[UUID, UUID]
) -> None:
    a, b = tenants
    yesterday = str(utc_today() - timedelta(1))
    rows = [{"dealerId": str(a), "date": yesterday}, {"dealerId": str(b), "date": yesterday}]
    before = await snapshot(conn)
    response = await api.client.post(
        "/api/signals", json={"signals": rows}, headers=api.bearer(tenant=a)
    )
    assert response.status_code == 403
    assert response.json()["error"].startswith("row 1: dealerId")
    assert await snapshot(conn) == before


async def test_cron_accepts_the_cron_secret_and_nothing_like_it(
    api: Api, tenants: tuple[UUID, UUID]
) -> None:
    ok = await api.client.get("/api/aoer/cron", headers={"Authorization": f"Bearer {CRON_SECRET}"})
    assert ok.status_code == 200
    assert ok.json() == {"success": True, "queued": 2}
    for wrong in (CRON_SECRET[:-1], CRON_SECRET + "x", ""):
        response = await api.client.get(
            "/api/aoer/cron", headers={"Authorization": f"Bearer {wrong}"}
        )
        assert response.status_code == 401


async def test_the_session_cookie_authenticates_like_a_bearer_token(
    api: Api, tenants: tuple[UUID, UUID]
) -> None:
    a, b = tenants
    link = api.tokens.mint("tenant", tenant_id=a, purpose=LOGIN_PURPOSE)
    same_origin = {"Origin": api.base_url, "Sec-Fetch-Site": "same-origin"}
    login = await api.client.post("/login", data={"token": link}, headers=same_origin)
    assert login.status_code == 303
    assert login.headers["location"] == "/dashboard"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    session = api.client.cookies.get(SESSION_COOKIE)
    assert session
    own = await api.client.get("/api/aoer/summary", params={"tenantId": str(a)})
    assert own.status_code == 200
    other = await api.client.get("/api/aoer/summary", params={"tenantId": str(b)})
    assert other.status_code == 403
    again = await api.client.post("/login", data={"token": link}, headers=same_origin)
    assert again.status_code == 401, "a login link works once"
    api.client.cookies.clear()
    signed_out = await api.client.get("/api/aoer/summary", params={"tenantId": str(a)})
    assert signed_out.status_code == 401


async def test_operations_endpoints_need_no_token(api: Api) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert (await api.client.get(path)).status_code == 200, path


STATE = """SELECT (SELECT count(*) FROM tenants) AS tenants,
                   (SELECT max(updated_at) FROM tenants) AS tenants_updated,
                   (SELECT count(*) FROM aiv_raw_signals) AS signals,
                   (SELECT max(updated_at) FROM aiv_raw_signals) AS signals_updated,
                   (SELECT count(*) FROM aoer_queue) AS jobs,
                   (SELECT max(updated_at) FROM aoer_queue) AS jobs_updated,
                   (SELECT max(updated_at) FROM aoer_summary) AS summaries_updated,
                   (SELECT count(*) FROM metrics_events) AS events"""


async def snapshot(conn: Connection) -> dict[str, object]:
    """Row counts and last updates of everything a request could write."""
    cur = await conn.execute(STATE)
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def test_credentials_are_checked_before_the_input(api: Api) -> None:
    for path in ("/api/aoer/summary", "/api/aoer/queue", "/api/aoer/history"):
        response = await api.client.get(path, params={"tenantId": "not-a-uuid"})
        assert response.status_code == 401, path
    posted = await api.client.post("/api/aoer/queue", json={"tenantId": "not-a-uuid"})
    assert posted.status_code == 401
