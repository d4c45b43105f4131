"""Property-based test of the served OpenAPI document (schemathesis): as an admin, generated
requests for every operation never get a 5xx, and every response matches the document
(status code, content type, headers, body schema); invalid input is always refused.

The server is a real `aoer serve` subprocess on its own database, so this test's blocking
HTTP calls never share an event loop with it. Bounded to finish in a minute or two.
"""

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from aoer.api.auth import TokenService
from tests.acceptance.conftest import cli_command, cli_env
from tests.api.conftest import CRON_SECRET, JWT_SECRET
from tests.conftest import _admin, as_test_role, with_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # ~50 s alone, minutes under load

EXAMPLES_PER_OPERATION = 50
START_S = 30.0
KNOWN_TENANTS = [uuid.UUID(int=i) for i in (0xA1, 0xB2)]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest,
    server_url: str,
    template_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`aoer serve` on a fresh database with two computed tenants; yields its base URL."""
    name = f"aoer_st_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f"CREATE DATABASE {name} TEMPLATE {template_db}")
    url = as_test_role(request, with_database(server_url, name))
    with psycopg.connect(url, autocommit=True) as conn:
        for number, tenant in enumerate(KNOWN_TENANTS):
            conn.execute(
                "INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant, f"Known Motors {number}")
            )
            conn.execute(
                "INSERT INTO aiv_raw_signals (dealer_id, date, aeo, geo, ugc)"
                " SELECT %s, current_date - d, 50 + d, 40, 30 FROM generate_series(0, 9) d",
                (tenant,),
            )
        conn.execute("SELECT aoer_store_scores(%s)", (KNOWN_TENANTS,))
    home = tmp_path_factory.mktemp("served")
    port = _free_port()
    env = cli_env(url, AOER_JWT_SECRET=JWT_SECRET, CRON_SECRET=CRON_SECRET, AOER_HOME=str(home))
    log = (home / "serve.log").open("w")
    process = subprocess.Popen(
        cli_command("serve", "--port", str(port)), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, home / "serve.log")
        yield base
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"aoer serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"aoer serve did not become ready:\n{log.read_text()}")


ADMIN = {"Authorization": f"Bearer {TokenService(JWT_SECRET).mint('admin')}"}


def aim_at_known_tenants(case: Any, pick: uuid.UUID) -> None:
    """Point a valid request at a real, computed tenant, so success paths are exercised too."""
    if isinstance(case.query, dict) and "tenantId" in case.query:
        case.query["tenantId"] = str(pick)
    body = case.body
    if isinstance(body, dict) and "tenantId" in body:
        body["tenantId"] = str(pick)
    for rows in ("signals", "observations"):
        if isinstance(body, dict) and isinstance(body.get(rows), list):
            for row in body[rows]:
                if isinstance(row, dict):
                    row["dealerId"] = str(pick)


def exercise(operation: Any, mode: GenerationMode, seen: set[int]) -> None:
    """Generated requests for one operation in one mode; raises on the first failing check.
    Adds the status codes it saw to `seen`."""
    positive = mode is GenerationMode.POSITIVE

    @given(
        case=operation.as_strategy(generation_mode=mode),
        aim=st.booleans(),
        pick=st.sampled_from(KNOWN_TENANTS),
    )
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any, aim: bool, pick: uuid.UUID) -> None:
        if aim and positive:
            aim_at_known_tenants(case, pick)
        response = case.call_and_validate(headers=ADMIN, checks=CHECKS)
        seen.add(response.status_code)

    check()


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value
)
def test_served_api_matches_its_openapi_document(served: str, mode: GenerationMode) -> None:
    """Valid requests (positive) and invalid ones (negative), as two tests so that parallel
    test processes can share them."""
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    problems: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/aoer/stream":
            continue  # endless by design; tests/api/test_stream.py covers it on a socket
        tested += 1
        seen = statuses.setdefault(f"{operation.method.upper()} {operation.path}", set())
        try:
            exercise(operation, mode, seen)
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
        except (AssertionError, BaseExceptionGroup, Exception) as exc:  # report them all
            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            problems[label] = str(exc)[:3000]
    assert tested >= 12
    assert problems == {}, "\n\n".join(f"{k}:\n{v}" for k, v in problems.items())
    if mode is GenerationMode.POSITIVE:
        # The generated requests reached the success paths, not only the refusals.
        for path in ("GET /api/aoer/summary", "GET /api/aoer/history", "GET /api/aoer/queue"):
            assert 200 in statuses[path], (path, statuses[path])
        assert 202 in statuses["POST /api/aoer/queue"]
        assert 200 in statuses["GET /api/aoer/engines"]
        assert 201 in statuses["POST /api/tenants"]
