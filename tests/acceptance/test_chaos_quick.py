"""The chaos harness (bench/chaos.py) runs end to end at its CI size and finds nothing lost.

Availability targets of issue 11 are reported in the table, not asserted here (the harness
fails on them only with --strict); what is asserted is that every scenario ran on a scratch
cluster, the table was printed, and no job was lost or recomputed twice.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import IN_CI, REPO

sys.path.insert(0, str(REPO / "bench"))

import chaos_ledger as ledger

CHAOS = REPO / "bench" / "chaos.py"
PG_BIN = Path(os.environ.get("AOER_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
HEADER = (
    "| scenario | jobs | lost | duplicated | stuck | failed | taken back from live workers"
    " | 5xx | seconds to recover | deadlocks | 'lost the lease' logs |"
)
SCENARIOS = (
    "a. SIGKILL workers during a drain",
    "b. SIGSTOP a worker mid-batch",
    "c. pg_ctl restart -m fast mid-drain",
    "c. pg_ctl restart -m immediate mid-drain",
    "d. lease 3 s, cores busy",
)


def table_rows(output: str) -> dict[str, list[str]]:
    """scenario → its cells, from the printed markdown table."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in SCENARIOS:
            rows[cells[0]] = cells
    return rows


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_chaos_quick_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    if not (PG_BIN / "initdb").exists():
        message = f"the chaos harness needs initdb in {PG_BIN} (AOER_CHAOS_PG_BIN)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOER_", "DATABASE_URL"))}
    env["AOER_CHAOS_PG_BIN"] = str(PG_BIN)
    done = subprocess.run(
        [sys.executable, str(CHAOS), "--quick"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    log = done.stdout[-6000:] + done.stderr[-6000:]
    assert done.returncode == 0, log
    assert HEADER in done.stdout, log
    rows = table_rows(done.stdout)
    assert set(rows) == set(SCENARIOS), log
    for name, cells in rows.items():
        jobs, lost, duplicated = (int(re.sub(r"\D", "", c)) for c in cells[1:4])
        assert jobs > 0, f"{name}: no jobs ran\n{log}"
        assert (lost, duplicated) == (0, 0), f"{name}: lost {lost}, duplicated {duplicated}"
    scratch = re.search(r"scratch cluster and logs in (\S+)", done.stderr)
    assert scratch is not None, log
    assert not Path(scratch.group(1)).exists(), "the scratch cluster was not removed"


def test_chaos_tally_counts_every_kind_of_loss(db_url: str) -> None:
    """The harness's own check finds a job lost each way, a duplicate and a stuck job."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ledger.register_fleet(conn, 7)
        feeder = ledger.Feeder(db_url, ledger.tenant_ids(7), 7, 7, endless=False)
        feeder.fill(conn, 7)
        done, twice, no_event, stuck, failed, gone, _waiting = feeder.ids
        conn.execute(
            "UPDATE aoer_queue SET status = 'completed', completed_at = now() WHERE id = ANY(%s)",
            ([done, twice, no_event],),
        )
        for job in (done, twice, twice):
            conn.execute(
                "INSERT INTO metrics_events (tenant_id, event_type, event_data)"
                " SELECT tenant_id, 'aoer_recompute', jsonb_build_object('jobId', id)"
                " FROM aoer_queue WHERE id = %s",
                (job,),
            )
        conn.execute(
            "UPDATE aoer_queue SET status = 'processing', locked_by = 'h:1:x',"
            " lease_expires_at = now() WHERE id = %s",
            (stuck,),
        )
        conn.execute("UPDATE aoer_queue SET status = 'failed' WHERE id = %s", (failed,))
        conn.execute("DELETE FROM aoer_queue WHERE id = %s", (gone,))
        tally = ledger.tally(conn, feeder.ids)
    assert tally.duplicated == 1
    assert tally.completed_without_event == 1
    assert (tally.stuck, tally.failed, tally.missing, tally.waiting_due) == (1, 1, 1, 1)
    assert tally.lost == 4  # no event, stuck, gone and the one still waiting
