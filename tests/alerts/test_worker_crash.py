"""A worker killed after its recompute committed, mid-delivery: another worker delivers the
alert exactly once (real `aoer worker` processes, a real receiver process)."""

import signal
import time
from pathlib import Path

import psycopg
import pytest

from tests.acceptance.conftest import start_aoer
from tests.alerts.conftest import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WAIT_S = 90


def scalar(db_url: str, sql: str, *params: object) -> object:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def wait_for(check: "object", what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_a_worker_killed_before_delivering_leaves_the_alert_to_another_worker(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.mode("hang")  # the first worker's request never gets an answer
    receiver.start()
    with psycopg.connect(db_url, autocommit=True) as conn:
        tenant = conn.execute(
            "INSERT INTO tenants (name) VALUES ('Crash Motors') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO aiv_raw_signals (dealer_id, date, aeo, geo, ugc)"
            " SELECT %s, current_date - d, 80, 80, 80 FROM generate_series(0, 9) d",
            (tenant,),
        )
        endpoint = conn.execute(
            "INSERT INTO alert_endpoints (url, secret, created_by) VALUES (%s, %s, 't')"
            " RETURNING id",
            (receiver.url, receiver.secret),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO alert_rules (scope, tenant_id, kind, endpoint_ids, created_by)"
            " VALUES ('tenant', %s, 'risk_level_up', %s, 't')",
            (tenant, [endpoint]),
        )
    env = {"AOER_ALERT_LEASE_SECONDS": "3", "AOER_ALERT_HTTP_TIMEOUT_SECONDS": "2"}
    first = start_aoer(db_url, tmp_path / "first.log", "worker", **env)
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("INSERT INTO aoer_queue (tenant_id) VALUES (%s)", (tenant,))
            conn.execute("NOTIFY aoer_queue")
        wait_for(
            lambda: scalar(db_url, "SELECT count(*) FROM metrics_events") == 1, "the first score"
        )
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "DELETE FROM aiv_raw_signals WHERE dealer_id = %s AND date < current_date - 1",
                (tenant,),
            )
            conn.execute("INSERT INTO aoer_queue (tenant_id) VALUES (%s)", (tenant,))
            conn.execute("NOTIFY aoer_queue")
        wait_for(lambda: len(receiver.records()) == 1, "the first worker's request, held")
        assert scalar(db_url, "SELECT count(*) FROM alerts") == 1, "committed with the recompute"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert scalar(db_url, "SELECT status FROM alert_deliveries") == "pending"
    assert receiver.delivered_ids() == []

    receiver.mode("ok")
    second = start_aoer(db_url, tmp_path / "second.log", "worker", **env)
    try:
        wait_for(
            lambda: scalar(db_url, "SELECT status FROM alert_deliveries") == "delivered",
            "the second worker to deliver after the lease ran out",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    delivery = str(scalar(db_url, "SELECT id FROM alert_deliveries"))
    assert receiver.delivered_ids() == [delivery], "delivered exactly once"
    assert scalar(db_url, "SELECT attempts FROM alert_deliveries") == 2
    assert all(r["verified"] and r["id"] == delivery for r in receiver.records())
