"""A worker killed in the middle of the chunked recompute tick: workers were already working on
its first chunks, and the next worker resumes the tick where the dead one's last committed
chunk ended. Every active tenant is queued exactly once."""

import signal
from pathlib import Path

import psycopg
import pytest

from tests.acceptance.conftest import start_aoer
from tests.acceptance.test_crash_and_concurrency import scalar, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ACTIVE, INACTIVE = 300, 10
TICK = (
    "SELECT count(*) > 0 FROM aoer_cron_ticks WHERE name = 'recompute'"
    " AND resume_after IS NOT NULL AND done_at IS NULL AND (result ->> 'chunks')::int >= 3"
)
# Once a year: the tick a worker fires on start, and no other while the test runs.
ENV = {
    "AOER_RUN_CRON": "true",
    "AOER_CRON": "0 0 1 1 *",
    "AOER_MODEL_SCHEDULE": "false",
    "AOER_TICK_CHUNK": "10",
    "AOER_LOG_EACH_TENANT": "false",
    "AOER_LEASE_SECONDS": "2",
}


def tick(db_url: str, column: str) -> object:
    return scalar(db_url, f"SELECT {column} FROM aoer_cron_ticks WHERE name = 'recompute'")


def jobs_per_tenant(db_url: str) -> tuple[object, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """SELECT count(*) FILTER (WHERE t.active AND n = 1),
                      count(*) FILTER (WHERE t.active AND n <> 1),
                      count(*) FILTER (WHERE NOT t.active AND n > 0)
               FROM tenants t
               CROSS JOIN LATERAL (SELECT count(*) AS n FROM aoer_queue q
                                   WHERE q.tenant_id = t.id) jobs"""
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_worker_killed_mid_tick_leaves_it_to_the_next_one(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO tenants (name, active) SELECT 'Dealer ' || g, g <= %s"
            " FROM generate_series(1, %s) g",
            (ACTIVE, ACTIVE + INACTIVE),
        )
    # 30 chunks a second apart: the kill lands between two of them.
    victim = start_aoer(
        db_url, tmp_path / "victim.log", "worker", AOER_TICK_CHUNK_PAUSE_SECONDS="1", **ENV
    )
    try:
        wait_for(lambda: scalar(db_url, TICK), "three committed chunks of the tick")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    done = tick(db_url, "(result ->> 'queued')::int")
    assert isinstance(done, int)
    assert 30 <= done < ACTIVE, "killed part-way"
    assert scalar(db_url, "SELECT count(*) FROM aoer_queue") == done, "each chunk committed"

    log = tmp_path / "next.log"
    rescuer = start_aoer(db_url, log, "worker", **ENV)
    try:
        wait_for(
            lambda: tick(db_url, "done_at IS NOT NULL"),
            "the next worker to finish the tick",
        )
        wait_for(
            lambda: (
                scalar(db_url, "SELECT count(*) FROM aoer_queue WHERE status <> 'completed'") == 0
            ),
            "every queued tenant to be recomputed",
        )
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(30) == 0
    assert jobs_per_tenant(db_url) == (ACTIVE, 0, 0)
    assert tick(db_url, "count(*)") == 1
    assert tick(db_url, "result -> 'resumed'") is True
    assert (
        scalar(
            db_url,
            "SELECT (result ->> 'queued')::int FROM aoer_cron_ticks WHERE name = 'recompute'",
        )
        == ACTIVE
    )
    assert f"Queued {ACTIVE} tenants for recompute" in log.read_text()
