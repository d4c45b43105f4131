"""`aoer model …` as an operator runs it: the real command line against the test's database."""

import subprocess
from pathlib import Path

import psycopg

from aoer.db.pool import Connection
from tests.acceptance.conftest import run_aoer
from tests.model.synthetic import POLICY, seed


def aoer(db_url: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_aoer(db_url, cwd, "model", *args, **env)


def test_model_commands_train_report_and_refuse_an_impossible_rollback(
    db_url: str, tmp_path: Path
) -> None:
    dry = aoer(db_url, tmp_path, "train", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing written" in dry.stdout
    assert "skipped: too little data to train: 0 training rows" in dry.stdout
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM model_audit").fetchone() == (0,)

    real = aoer(db_url, tmp_path, "train")
    assert real.returncode == 0, real.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT trigger, decision FROM model_audit").fetchall() == [
            ("cli", "skipped")
        ]

    status = aoer(db_url, tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "champion v1" in status.stdout
    assert "aeo 0.400000, geo 0.350000, ugc 0.250000" in status.stdout
    assert "skipped" in status.stdout

    rollback = aoer(db_url, tmp_path, "rollback")
    assert rollback.returncode == 1
    assert "nothing to roll back: v1 did not replace an earlier champion" in rollback.stderr


async def test_a_promotion_and_a_rollback_from_the_command_line_are_audited(
    db_url: str, tmp_path: Path, conn: Connection
) -> None:
    """DESIGN §12: a model promote or rollback lands in the audit log, from the CLI as from
    the API."""
    await seed(conn, outcome="linear")
    policy = {
        "AOER_MODEL_TRAIN_DAYS": str(POLICY.train_days),
        "AOER_MODEL_MIN_ROWS": str(POLICY.min_rows),
        "AOER_MODEL_MIN_HOLDOUT_ROWS": str(POLICY.min_holdout_rows),
    }
    trained = aoer(db_url, tmp_path, "train", **policy)
    assert trained.returncode == 0, trained.stderr
    assert "promoted" in trained.stdout
    rolled = aoer(db_url, tmp_path, "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back from v2 to v1" in rolled.stdout
    assert "v1 is pinned: training still runs, but promotes nothing over it" in rolled.stdout
    status = aoer(db_url, tmp_path, "status")
    assert "pinned" in status.stdout
    assert "until `aoer model unpin`" in status.stdout
    unpinned = aoer(db_url, tmp_path, "unpin")
    assert unpinned.returncode == 0, unpinned.stderr
    assert "v1 unpinned: the next training may promote over it" in unpinned.stdout
    twice = aoer(db_url, tmp_path, "unpin")
    assert twice.returncode == 1
    assert "the champion v1 is not pinned" in twice.stderr
    cur = await conn.execute(
        "SELECT a.action, a.role, a.target, a.details ->> 'from' AS was,"
        " a.details ->> 'auditId' = m.id::text AS same_run, a.actor LIKE 'cli%%' AS by_cli"
        " FROM audit_log a JOIN model_audit m ON m.id::text = a.details ->> 'auditId'"
        " ORDER BY a.id"
    )
    assert [tuple(r.values()) for r in await cur.fetchall()] == [
        ("model.promote", "admin", "v2", "v1", True, True),
        ("model.rollback", "admin", "v1", "v2", True, True),
    ]
    cur = await conn.execute("SELECT action, target FROM audit_log WHERE action = 'model.unpin'")
    assert [tuple(r.values()) for r in await cur.fetchall()] == [("model.unpin", "v1")]
