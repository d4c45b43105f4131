"""Run the real `aoer` command line as subprocesses against the test's own database."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CLI_TIMEOUT_S = 120
AoerCli = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOER_", "DATABASE_URL"))}
    env.update(
        {
            "DATABASE_URL": db_url,
            "AOER_RUN_CRON": "false",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aoer", *args]


def run_aoer(
    db_url: str, tmp_path: Path, *args: str, timeout: float = CLI_TIMEOUT_S, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `aoer ARGS…` on `db_url` from `tmp_path` (its home under it) to completion; the
    completed process (never raises on the exit code)."""
    return subprocess.run(
        cli_command(*args),
        env=cli_env(db_url, AOER_HOME=str(tmp_path / "home"), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        check=False,
    )


@pytest.fixture
def aoer(db_url: str, tmp_path: Path) -> AoerCli:
    """Run `aoer ARGS…` to completion; returns the completed process (never raises on exit code)."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_aoer(db_url, tmp_path, *args, **env)

    return run


def start_aoer(
    db_url: str, log: Path, *args: str, new_session: bool = False, **env: str
) -> subprocess.Popen[str]:
    """Start `aoer ARGS…` in the background, output to `log`; in a session of its own (as a
    service manager starts it) with `new_session`."""
    handle = log.open("w")
    return subprocess.Popen(
        cli_command(*args),
        env=cli_env(db_url, **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=log.parent,
        start_new_session=new_session,
    )
