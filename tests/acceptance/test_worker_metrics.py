"""`aoer worker --metrics-port`: a separately deployed worker exports its own job metrics."""

import signal
import socket
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.acceptance.conftest import AoerCli, start_aoer
from tests.acceptance.test_up import free_port

WAIT_S = 60


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_worker_serves_its_job_and_batch_metrics(
    aoer: AoerCli, db_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO tenants (name) SELECT 'd' || g FROM generate_series(1, 3) g")
    port = free_port()
    worker = start_aoer(db_url, tmp_path / "worker.log", "worker", "--metrics-port", str(port))
    try:
        deadline = time.monotonic() + WAIT_S
        while "worker active" not in (tmp_path / "worker.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
        assert aoer("cron", "--once").returncode == 0
        text = ""
        while 'aoer_jobs_total{outcome="completed"} 3.0' not in text:
            if time.monotonic() > deadline:
                pytest.fail(f"metrics never showed 3 completed jobs:\n{text}")
            time.sleep(0.2)
            text = scrape(port)
        assert "aoer_recompute_batch_size_count 1.0" in text
        assert "aoer_job_latency_seconds_count 3.0" in text
        assert "aoer_queue_jobs" not in text, "fleet-wide queue depth is the API's to export"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def test_bad_worker_options_are_one_error_line_and_start_nothing(aoer: AoerCli) -> None:
    """Out-of-range options are usage errors (exit 2) before anything starts; a metrics port
    another process holds is one `error:` line (exit 1), not a traceback."""
    for option, value in (("--concurrency", "0"), ("--concurrency", "65"), ("--metrics-port", "0")):
        refused = aoer("worker", "--drain", option, value)
        assert refused.returncode == 2, (option, value, refused.stderr)
        assert option in refused.stderr
        assert "worker active" not in refused.stdout
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = aoer("worker", "--drain", "--metrics-port", str(port))
    assert busy.returncode == 1, busy.stderr
    assert f"error: cannot serve worker metrics on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr
