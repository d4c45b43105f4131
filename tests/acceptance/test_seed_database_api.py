"""The old system's own end-to-end check (its deployment guide: "Test the System", "Verify
Database Updates", "Debug Commands"), run against a database the old migration built and
`aoer migrate` adopted, with a real `aoer worker` process: queue a tenant with
`queue_tenant_recompute` and see the worker complete it, compute with
`compute_aoer_for_tenant`, store with `update_aoer_summary`, see the summary and a new
`metrics_events` row -- once as the service, once as a tenant with its claims (SET ROLE
aoer_tenant and request.jwt.claims, as the API's scoped sessions and PostgREST do)."""

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.acceptance.conftest import cli_command, cli_env, start_aoer
from tests.conftest import eventually
from tests.migration.seed import execute, fetch, old_database, v1_score

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SERVICE_TENANT = "e1a63d30-4a8b-4bb9-86e8-48c7238a54de"  # the guide's example tenant
CLAIMED_TENANT = "5b0c7e52-9d8e-4f0a-b8a4-3f1c2d7e6a10"
WAIT_S = 60.0


@pytest.fixture
def adopted_db(server_url: str, tmp_path: Path) -> Iterator[str]:
    """An old system's database with two dealers' signals, history and a queue, adopted by
    the real `aoer migrate`."""
    with old_database(server_url) as url:
        for n, tenant in enumerate((SERVICE_TENANT, CLAIMED_TENANT)):
            execute(
                url,
                "INSERT INTO aiv_raw_signals (dealer_id, date, aeo, geo, ugc)"
                " SELECT %s, current_date - d, 40 + d * %s, 55 + d, 70 - d"
                " FROM generate_series(0, 19) d",
                (tenant, n + 1),
            )
            execute(url, "SELECT update_aoer_summary(%s)", (tenant,))  # the old function
            execute(url, "SELECT queue_tenant_recompute(%s, 'low')", (tenant,))
            execute(url, "SELECT queue_tenant_recompute(%s, 'high')", (tenant,))
        migrated = subprocess.run(
            cli_command("migrate"),
            env=cli_env(url, AOER_HOME=str(tmp_path / "home")),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        yield url


@pytest.fixture
def worker(adopted_db: str, tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "worker.log"
    process = start_aoer(adopted_db, log, "worker", AOER_HOME=str(tmp_path / "home"))
    try:
        yield log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()[-3000:]


def expected(url: str, tenant: str) -> tuple[Decimal, Decimal]:
    rows = fetch(
        url, "SELECT date, aeo, geo, ugc FROM aiv_raw_signals WHERE dealer_id = %s", (tenant,)
    )
    return v1_score(rows, datetime.now(UTC).date())


def logged(log: Path, line: str) -> bool:
    return line in log.read_text()


def as_service(url: str) -> psycopg.Connection[dict[str, Any]]:
    """The worker's and scripts' side: the schema owner, no claims (service_role's place)."""
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def as_tenant(url: str, tenant: str) -> psycopg.Connection[dict[str, Any]]:
    conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
    conn.execute("SET ROLE aoer_tenant")
    conn.execute(
        "SELECT set_config('request.jwt.claims', %s, false)",
        (json.dumps({"role": "tenant", "tenant_id": tenant}),),
    )
    return conn


async def run_the_old_check(
    conn: psycopg.Connection[dict[str, Any]], tenant: str, url: str, log: Path
) -> None:
    score, risk = expected(url, tenant)

    def idle() -> bool:  # the adopted database's own waiting job is done first
        busy = conn.execute(
            "SELECT count(*) AS n FROM aoer_queue WHERE tenant_id = %s"
            " AND status IN ('queued', 'processing')",
            (tenant,),
        ).fetchone()
        return busy is not None and busy["n"] == 0

    await eventually(idle, "the adopted waiting job to be done", WAIT_S)
    events_before = conn.execute(
        "SELECT count(*) AS n FROM metrics_events WHERE tenant_id = %s", (tenant,)
    ).fetchone()

    # node -e "...enqueueTenantRecompute('<tenant>')": queued, and a real worker completes it.
    job = conn.execute("SELECT queue_tenant_recompute(%s, 'urgent') AS id", (tenant,)).fetchone()
    assert job is not None

    def completed() -> bool:
        state = conn.execute("SELECT status FROM aoer_queue WHERE id = %s", (job["id"],))
        return (state.fetchone() or {}).get("status") == "completed"

    await eventually(completed, f"the worker completing job {job['id']}", WAIT_S)
    done = f"[AOER] ✅ Completed recompute for tenant {tenant}"
    await eventually(lambda: logged(log, done), f"the worker logging {done!r}", WAIT_S)
    status = conn.execute("SELECT * FROM get_aoer_queue_status()").fetchall()
    assert all(row["status"] in ("queued", "processing") for row in status)

    # supabase.rpc('compute_aoer_for_tenant', { tenant_uuid }) -- what the worker stored.
    [computed] = conn.execute("SELECT * FROM compute_aoer_for_tenant(%s)", (tenant,)).fetchall()
    assert (computed["aoer_score"], computed["visibility_risk"]) == (score, risk)
    stored = conn.execute(
        "SELECT aoer_score, visibility_risk FROM aoer_summary WHERE tenant_id = %s", (tenant,)
    ).fetchone()
    assert stored == {"aoer_score": score, "visibility_risk": risk}

    # update_aoer_summary, then "Verify Database Updates".
    [ok] = conn.execute("SELECT update_aoer_summary(%s) AS ok", (tenant,)).fetchall()
    assert ok == {"ok": True}
    [summary] = conn.execute(
        "SELECT * FROM aoer_summary WHERE tenant_id = %s ORDER BY updated_at DESC LIMIT 10",
        (tenant,),
    ).fetchall()
    assert (summary["aoer_score"], summary["visibility_risk"]) == (score, risk)
    assert summary["metrics"]["dataPoints"] == 20
    events = conn.execute(
        "SELECT * FROM metrics_events WHERE event_type = 'aoer_recompute' AND tenant_id = %s"
        " ORDER BY created_at DESC LIMIT 10",
        (tenant,),
    ).fetchall()
    assert events[0]["event_data"]["source"] == "update_aoer_summary"
    assert Decimal(str(events[0]["event_data"]["aoerScore"])) == score
    assert events_before is not None
    # one from the worker's job, one from update_aoer_summary: a new row per run
    assert len(events) == min(events_before["n"] + 2, 10)


async def test_the_old_end_to_end_check_as_the_service(adopted_db: str, worker: Path) -> None:
    active = "[AOER] AOER Orchestrator worker active"
    await eventually(lambda: logged(worker, active), "the worker to start", WAIT_S)
    with as_service(adopted_db) as conn:
        await run_the_old_check(conn, SERVICE_TENANT, adopted_db, worker)
        rows = conn.execute("SELECT status, count(*) AS n FROM aoer_queue GROUP BY status")
        by_status = {r["status"]: r["n"] for r in rows.fetchall()}
    # The old database's two waiting jobs per tenant became one, done with the rest.
    assert by_status.get("queued", 0) == 0
    assert by_status["completed"] >= 4


async def test_the_old_end_to_end_check_as_a_tenant_with_claims(
    adopted_db: str, worker: Path
) -> None:
    active = "[AOER] AOER Orchestrator worker active"
    await eventually(lambda: logged(worker, active), "the worker to start", WAIT_S)
    with as_tenant(adopted_db, CLAIMED_TENANT) as conn:
        await run_the_old_check(conn, CLAIMED_TENANT, adopted_db, worker)
        seen = conn.execute("SELECT DISTINCT tenant_id::text AS t FROM aoer_summary").fetchall()
        assert seen == [{"t": CLAIMED_TENANT}]
        assert (
            conn.execute("SELECT * FROM compute_aoer_for_tenant(%s)", (SERVICE_TENANT,)).fetchall()
            == []
        )
        with pytest.raises(psycopg.errors.NoDataFound):
            conn.execute("SELECT update_aoer_summary(%s)", (SERVICE_TENANT,))
        with pytest.raises(psycopg.errors.NoDataFound):
            conn.execute("SELECT queue_tenant_recompute(%s)", (SERVICE_TENANT,))
