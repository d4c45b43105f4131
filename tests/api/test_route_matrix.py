"""The isolation matrix, generated from the application's route table (DESIGN §12).

Every route the app serves, for every kind of caller → the status it must answer, and the body
of every 2xx holds no id the caller may not see. A route nobody declared fails the suite:
adding a route means adding its one line to `EXPECTED` below.

World: organisation A holds dealership `a`, organisation B holds `b`, `loose` is in none.
Every request aims at `a` (query `tenantId`, path parameters, bodies), so org A and tenant A
are the owners, org B and tenant B the outsiders. Callers come as JWTs and as API keys.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from aoer.api import api_routers
from aoer.dashboard import dashboard_routers
from aoer.db.pool import Connection
from aoer.store.keys import IssuedKey
from tests.api.conftest import Api
from tests.api.org_world import OrgWorld, world
from tests.conftest import session_of, utc_today

__all__ = ["world"]  # the fixture, imported for pytest

OWNERS_AND_OUTSIDERS = ("admin", "service", "org_a", "org_b", "tenant_a", "tenant_b")
BAD_CREDENTIALS = ("revoked_key", "expired_key", "none")
CALLERS = OWNERS_AND_OUTSIDERS + BAD_CREDENTIALS
STREAMING = "stream"  # a 200 that never ends: the in-process client checks refusals only


@dataclass(frozen=True)
class Expect:
    """Statuses for admin, service, org A, org B, tenant A, tenant B (in that order); revoked
    and expired keys and no credentials get 401 unless the route is public."""

    statuses: tuple[int | str, int | str, int | str, int | str, int | str, int | str]
    body: Any = None
    public: bool = False

    def status(self, caller: str) -> int | str:
        if caller in BAD_CREDENTIALS:
            return self.statuses[0] if self.public else 401
        return self.statuses[OWNERS_AND_OUTSIDERS.index(caller)]


YESTERDAY = str(utc_today() - timedelta(days=1))
ALL_OK = (200, 200, 200, 200, 200, 200)
READ_OWN = (200, 403, 200, 403, 200, 403)
ADMIN_ONLY = (200, 403, 403, 403, 403, 403)
S = STREAMING

# One line per route: "<METHOD> <path>": Expect((admin, service, orgA, orgB, tenantA, tenantB)).
EXPECTED: dict[str, Expect] = {
    "POST /api/aoer/queue": Expect((202, 202, 202, 403, 202, 403), {"tenantId": "{a}"}),
    "GET /api/aoer/queue": Expect(READ_OWN),
    "GET /api/aoer/summary": Expect(READ_OWN),
    "GET /api/aoer/history": Expect(READ_OWN),
    "GET /api/aoer/stream": Expect((S, 403, S, 403, S, 403)),
    "GET /api/aoer/cron": Expect((200, 200, 403, 403, 403, 403)),
    "POST /api/signals": Expect(
        (200, 200, 200, 403, 200, 403),
        {"signals": [{"dealerId": "{a}", "date": YESTERDAY, "aeo": 70}], "enqueue": False},
    ),
    "POST /api/observations": Expect(
        (200, 200, 200, 403, 200, 403),
        {
            "observations": [
                {
                    "dealerId": "{a}",
                    "date": YESTERDAY,
                    "engine": "chatgpt",
                    "prompt": "p",
                    "mentioned": True,
                    "cited": False,
                }
            ],
            "deriveSignals": False,
        },
    ),
    "GET /api/aoer/engines": Expect(READ_OWN),
    "GET /api/tenants": Expect(ALL_OK),
    "POST /api/tenants": Expect((201, 403, 403, 403, 403, 403), {"name": "Matrix Motors"}),
    "PATCH /api/tenants/{tenant_id}": Expect(ADMIN_ONLY, {"orgId": "{org_a}"}),
    "GET /api/orgs": Expect((200, 403, 200, 200, 403, 403)),
    "POST /api/orgs": Expect((201, 403, 403, 403, 403, 403), {"name": "Matrix Group"}),
    "GET /api/keys": Expect((200, 403, 200, 200, 403, 403)),
    "POST /api/keys": Expect(
        (201, 403, 201, 403, 403, 403), {"scope": "tenant", "tenantId": "{a}"}
    ),
    "DELETE /api/keys/{key_id}": Expect((204, 403, 204, 404, 403, 403)),
    "GET /api/audit": Expect((200, 403, 200, 200, 403, 403)),
    "GET /api/fleet": Expect((200, 403, 200, 200, 403, 403)),
    "GET /api/jobs": Expect(READ_OWN),
    "GET /api/jobs/{job_id}": Expect((200, 403, 200, 404, 200, 404)),
    # A failed job of tenant a: the admin's retry queues it, so org A's finds it queued (409).
    "POST /api/jobs/{job_id}/retry": Expect((200, 403, 409, 404, 403, 403)),
    "POST /api/jobs/{job_id}/cancel": Expect((409, 403, 409, 404, 403, 403)),
    "POST /api/queue/pause": Expect(ADMIN_ONLY),
    "POST /api/queue/resume": Expect(ADMIN_ONLY),
    "GET /api/queue/state": Expect((200, 403, 200, 200, 200, 200)),
    "GET /api/workers": Expect(ADMIN_ONLY),
    "GET /api/alerts": Expect(READ_OWN),
    "GET /api/alerts/rules": Expect((200, 403, 200, 403, 200, 403)),
    # Each caller its own address: a second identical rule is refused as a repeat (409).
    "POST /api/alerts/rules": Expect(
        (201, 403, 201, 404, 403, 403),
        {"kind": "risk_level_up", "tenantId": "{a}", "emails": ["{caller}@example.com"]},
    ),
    # A DELETE's first caller (the admin) removes the row: org A then finds nothing (404).
    "DELETE /api/alerts/rules/{rule_id}": Expect((204, 403, 404, 404, 403, 403)),
    "GET /api/alerts/endpoints": Expect((200, 403, 200, 200, 403, 403)),
    "POST /api/alerts/endpoints": Expect(
        (201, 403, 201, 403, 403, 403),
        {"url": "https://hooks.example.com/aoer", "orgId": "{org_a}"},
    ),
    "DELETE /api/alerts/endpoints/{endpoint_id}": Expect((204, 403, 404, 404, 403, 403)),
    "POST /api/alerts/endpoints/{endpoint_id}/test": Expect((200, 403, 200, 404, 403, 403)),
    "GET /api/model": Expect(ADMIN_ONLY),
    "POST /api/model/train": Expect(ADMIN_ONLY, {"dryRun": True}),
    "POST /api/model/rollback": Expect((409, 403, 403, 403, 403, 403), {}),
    "POST /api/model/unpin": Expect((409, 403, 403, 403, 403, 403), {}),
    "GET /healthz": Expect(ALL_OK, public=True),
    "GET /readyz": Expect(ALL_OK, public=True),
    "GET /metrics": Expect(ALL_OK, public=True),
    "GET /login": Expect((422,) * 6, public=True),  # without ?token=: public, names it
}


def declared_routes(openapi: dict[str, Any]) -> set[str]:
    """`METHOD path` of every operation the app documents (its public route table)."""
    methods = {"get", "post", "put", "patch", "delete"}
    return {
        f"{method.upper()} {path}"
        for path, item in openapi["paths"].items()
        for method in item
        if method in methods
    }


def collected_routes() -> list[str]:
    """The routers `aoer serve` mounts, at collection time (the app adds none of its own)."""
    return sorted(
        f"{method} {route.path}"
        for router in [*api_routers(), *dashboard_routers()]
        for route in router.routes
        if getattr(route, "include_in_schema", False)
        for method in sorted(getattr(route, "methods", ()))
        if method != "HEAD"
    )


async def test_every_route_of_the_app_has_a_declared_expectation(api: Api) -> None:
    served = declared_routes(api.app.openapi())
    missing = sorted(served - set(EXPECTED))
    assert not missing, (
        "routes without an isolation expectation (add one line each to EXPECTED in "
        f"tests/api/test_route_matrix.py, e.g. '{missing[0]}': Expect((admin, service, orgA, "
        f"orgB, tenantA, tenantB))): {missing}"
    )
    stale = sorted(set(EXPECTED) - served)
    assert not stale, f"EXPECTED names routes the app no longer serves: {stale}"


@dataclass
class Credentials:
    headers: dict[str, dict[str, str]]
    key_of_a: UUID  # a tenant key of `a` (what DELETE /api/keys/{key_id} aims at)
    hidden: dict[str, set[str]]  # caller → ids it must never see in a 2xx body


async def issue(conn: Connection, scope: str, **kw: Any) -> IssuedKey:
    params = {"org_id": None, "tenant_id": None, "name": None, "expires_at": None, **kw}
    return await session_of(conn).keys.issue(scope, created_by="matrix", **params)


@pytest.fixture
async def credentials(api: Api, conn: Connection, world: OrgWorld) -> Credentials:
    def jwt(role: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {api.tokens.mint(role, **kw)}"}

    def key(issued: IssuedKey) -> dict[str, str]:
        return {"Authorization": f"Bearer {issued.key}"}

    org_b_key = await issue(conn, "org", org_id=world.org_b)
    tenant_b_key = await issue(conn, "tenant", tenant_id=world.b)
    revoked = await issue(conn, "admin")
    await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (revoked.record.id,))
    expired = await issue(conn, "admin", expires_at=datetime.now(UTC) + timedelta(hours=1))
    await conn.execute(
        "UPDATE api_keys SET created_at = now() - interval '1 day', expires_at = now()"
        " WHERE id = %s",
        (expired.record.id,),
    )
    key_of_a = await issue(conn, "tenant", tenant_id=world.a)
    a_side = {str(world.a), str(world.org_a), str(key_of_a.record.id)}
    b_side = {str(world.b), str(world.org_b), str(org_b_key.record.id), str(tenant_b_key.record.id)}
    loose = {str(world.loose)}
    return Credentials(
        headers={
            "admin": jwt("admin"),
            "service": jwt("service"),
            "org_a": jwt("org", org_id=world.org_a),
            "org_b": key(org_b_key),
            "tenant_a": jwt("tenant", tenant_id=world.a),
            "tenant_b": key(tenant_b_key),
            "revoked_key": key(revoked),
            "expired_key": key(expired),
            "none": {},
        },
        key_of_a=key_of_a.record.id,
        hidden={
            "org_a": b_side | loose,
            "org_b": a_side | loose,
            "tenant_a": b_side | loose,
            "tenant_b": a_side | loose,
        },
    )


def strings_in(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for k, v in document.items():
            yield str(k)
            yield from strings_in(v)
    elif isinstance(document, list):
        for v in document:
            yield from strings_in(v)
    elif document is not None:
        yield str(document)


def filled(value: Any, world: OrgWorld) -> Any:
    text = json.dumps(value)
    for name in ("a", "b", "org_a", "org_b"):
        text = text.replace("{" + name + "}", str(getattr(world, name)))
    return json.loads(text)


def filled_for(body: Any, caller: str) -> Any:
    """The body as `caller` sends it (`{caller}`: its name, for values that must differ)."""
    return None if body is None else json.loads(json.dumps(body).replace("{caller}", caller))


@pytest.mark.parametrize("route", collected_routes())
async def test_route_answers_each_caller_as_declared(
    api: Api, conn: Connection, world: OrgWorld, credentials: Credentials, route: str
) -> None:
    assert route in EXPECTED, (
        f"{route} has no isolation expectation: add one line for it to EXPECTED in "
        "tests/api/test_route_matrix.py"
    )
    expect = EXPECTED[route]
    method, template = route.split(" ", 1)
    path = template.replace("{tenant_id}", str(world.a)).replace(
        "{key_id}", str(credentials.key_of_a)
    )
    if "{job_id}" in path:  # a failed job of tenant a (retry: back to queued; cancel: 409)
        cur = await conn.execute(
            "INSERT INTO aoer_queue (tenant_id, status, retry_count, error_message, completed_at)"
            " VALUES (%s, 'failed', 3, 'boom', now()) RETURNING id",
            (world.a,),
        )
        row = await cur.fetchone()
        assert row is not None
        path = path.replace("{job_id}", str(row["id"]))
    if "{endpoint_id}" in path:  # an endpoint of organisation A
        cur = await conn.execute(
            "INSERT INTO alert_endpoints (org_id, url, secret, created_by) VALUES"
            " (%s, 'http://127.0.0.1:9/hook', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'matrix')"
            " RETURNING id",
            (world.org_a,),
        )
        row = await cur.fetchone()
        assert row is not None
        path = path.replace("{endpoint_id}", str(row["id"]))
    if "{rule_id}" in path:  # a rule on tenant a
        cur = await conn.execute(
            "INSERT INTO alert_rules (scope, tenant_id, kind, emails, created_by) VALUES"
            " ('tenant', %s, 'risk_level_up', '{ops@example.com}', 'matrix') RETURNING id",
            (world.a,),
        )
        row = await cur.fetchone()
        assert row is not None
        path = path.replace("{rule_id}", str(row["id"]))
    assert "{" not in path, f"teach the matrix a value for the path parameter of {route}"
    body = filled(expect.body, world) if expect.body is not None else None
    wrong: list[str] = []
    for caller in CALLERS:
        wanted = expect.status(caller)
        if wanted == STREAMING:
            continue
        answer = await api.client.request(
            method,
            path,
            params={"tenantId": str(world.a)} if method == "GET" else None,
            json=filled_for(body, caller),
            headers=credentials.headers[caller],
        )
        if answer.status_code != wanted:
            wrong.append(f"{caller}: {answer.status_code} (expected {wanted}) {answer.text[:200]}")
            continue
        hidden = credentials.hidden.get(caller, set())
        if 200 <= answer.status_code < 300 and hidden and answer.content:
            if answer.headers.get("content-type", "").startswith("application/json"):
                leaked = hidden & set(strings_in(answer.json()))
            else:
                leaked = {h for h in hidden if h in answer.text}
            if leaked:
                wrong.append(f"{caller}: the 2xx body shows ids it may not see: {leaked}")
    assert not wrong, f"{route}:\n  " + "\n  ".join(wrong)
