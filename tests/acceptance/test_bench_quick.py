"""The benchmark harness runs end to end at a small size, so it cannot rot unnoticed.

Timing targets live in bench/ and are not asserted here; what is asserted is that every
method runs, that they all leave identical summaries, and that the table is written.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, with_database

TENANTS = 300


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_quick_runs_every_method_with_identical_summaries(
    server_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "results.md"
    env = dict(os.environ)
    env["AOER_BENCH_DATABASE_URL"] = with_database(
        server_url, f"aoer_bench_{uuid.uuid4().hex[:10]}"
    )
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--tenants",
            str(TENANTS),
            "--output",
            str(output),
            "--procrastinate-concurrency",
            "1,4",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    log = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, log
    table = output.read_text()
    assert "| method | seconds | tenants/s | ratio to floor | peak memory | notes |" in table
    for method in (
        "1. floor",
        "2. this system: 1 running `aoer worker` process",
        "2. this system: 2 running `aoer worker` processes",
        "2. this system, cold: `aoer cron --once`, then 2 × `aoer worker --drain`",
        "3. replaced design",
        "4. Procrastinate",
    ):
        assert method in table, table
    assert "Check passed" in table, table
    assert "Idle urgent-job latency" in table, table
    assert f"{TENANTS} tenants" in table.replace(",", ""), table


async def test_bench_check_reports_a_differing_summary(db_url: str) -> None:
    """The identical-summaries check is what makes the table trustworthy: it must catch a
    method whose summary differs from the floor's, and a tenant a method never wrote."""
    sys.path.insert(0, str(REPO / "bench"))
    from aoer.db.pool import connect
    from common import compare
    from dataset import CREATE_RESULTS

    conn = await connect(db_url)
    try:
        await conn.execute(CREATE_RESULTS)
        same, changed, missing = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        rows = [
            ("floor", same, "61.20", "0.20", '{"avgAEO": 60.00}'),
            ("floor", changed, "61.20", "0.20", '{"avgAEO": 60.00}'),
            ("floor", missing, "0.00", "1.00", '{"error": "No data available"}'),
            ("other", same, "61.20", "0.20", '{"avgAEO": 60.00}'),
            ("other", changed, "61.20", "0.20", '{"avgAEO": 60.0}'),
        ]
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO bench_results VALUES (%s, %s, %s, %s, %s)", rows)
    finally:
        await conn.close()

    full = await compare(db_url, "floor", "other", complete=True)
    assert (full.differing, full.missing) == (1, 1)
    assert str(changed) in full.examples[0]
    partial = await compare(db_url, "floor", "other", complete=False)
    assert (partial.differing, partial.missing) == (1, 0)
