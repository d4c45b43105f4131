"""The hand-read `?tenantId=` dependency behaves and is documented as FastAPI's declared one.

`tenant_query_access` reads the credentials and `tenantId` off the request itself (it sits on
the cached summary read, the API's hottest path). These tests hold it to what the declared
`bearer_scheme` + `cookie_scheme` + `Query(alias="tenantId")` version would do and document.
"""

from typing import Annotated, Any
from uuid import UUID

import pytest
from fastapi import FastAPI, Query
from starlette.requests import Request

from aoer.api.auth import (
    SESSION_COOKIE,
    TENANT_ID_DESCRIPTION,
    TENANT_QUERY_DOC,
    BearerCredentials,
    SessionCookie,
    bearer_scheme,
    cookie_scheme,
    request_token,
)
from tests.api.conftest import Api

HOT_READS = ("/api/aoer/summary", "/api/aoer/queue", "/api/aoer/history")


def declared_operation() -> dict[str, Any]:
    """The OpenAPI operation FastAPI derives from the declared dependencies."""
    app = FastAPI()

    @app.get("/declared")
    async def declared(
        bearer: BearerCredentials,
        cookie: SessionCookie,
        tenant_id: Annotated[UUID, Query(alias="tenantId", description=TENANT_ID_DESCRIPTION)],
    ) -> None:
        return None

    operation: dict[str, Any] = app.openapi()["paths"]["/declared"]["get"]
    return operation


async def test_the_documented_tenant_query_is_what_fastapi_would_derive(api: Api) -> None:
    declared = declared_operation()
    assert TENANT_QUERY_DOC["security"] == declared["security"]
    assert TENANT_QUERY_DOC["parameters"] == declared["parameters"]
    served = (await api.client.get("/openapi.json")).json()
    schemes = served["components"]["securitySchemes"]
    for path in HOT_READS:
        operation = served["paths"][path]["get"]
        assert operation["security"] == declared["security"], path
        assert all(name in schemes for entry in operation["security"] for name in entry)
        tenant_params = [p for p in operation["parameters"] if p["name"] == "tenantId"]
        assert tenant_params == declared["parameters"], path


def request(authorization: str | None = None, cookie: str | None = None) -> Request:
    headers = []
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


CREDENTIALS = [
    pytest.param(None, None, id="nothing"),
    pytest.param("Bearer tok", None, id="bearer"),
    pytest.param("bearer  tok ", None, id="lower-case scheme, padded"),
    pytest.param("BEARER tok", "cookie-tok", id="bearer wins over the cookie"),
    pytest.param("Bearer", "cookie-tok", id="bearer without token"),
    pytest.param("Bearer ", None, id="bearer with blank token"),
    pytest.param("Basic dXNlcjpwdw==", "cookie-tok", id="other scheme falls back to cookie"),
    pytest.param("", "cookie-tok", id="empty header"),
    pytest.param(None, "cookie-tok", id="cookie"),
    pytest.param(None, "", id="empty cookie"),
]


@pytest.mark.parametrize(("authorization", "cookie"), CREDENTIALS)
async def test_request_token_reads_what_the_declared_schemes_read(
    authorization: str | None, cookie: str | None
) -> None:
    incoming = request(authorization, cookie)
    bearer = await bearer_scheme(incoming)
    expected = bearer.credentials if bearer is not None else await cookie_scheme(incoming)
    assert request_token(incoming) == (expected, bearer is None)


async def test_hot_reads_name_an_empty_tenant_id(api: Api) -> None:
    for path in HOT_READS:
        empty = await api.client.get(path, params={"tenantId": ""}, headers=api.admin)
        assert empty.status_code == 422, path
        assert empty.json()["errors"][0]["field"] == "tenantId"
        assert empty.json()["error"].startswith("tenantId: Input should be a valid UUID")
