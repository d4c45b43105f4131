"""`aoer model …` as an operator runs it: the real command line against the test's database."""

import subprocess
from pathlib import Path

import psycopg

from tests.acceptance.conftest import CLI_TIMEOUT_S, cli_command, cli_env


def aoer(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("model", *args),
        env=cli_env(db_url, AOER_HOME=str(cwd / "home")),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        cwd=cwd,
        check=False,
    )


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
