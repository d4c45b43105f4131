"""`aoer serve --reuse-port`: several API processes share one port, each fully working."""

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path

from aoer.api.auth import TokenService
from tests.acceptance.conftest import AoerCli, start_aoer
from tests.acceptance.test_up import free_port

SECRET = "replica-secret-0123456789abcdef-0123456789"
WAIT_S = 60


def get(port: int, path: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def test_two_api_processes_share_one_port(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {"AOER_JWT_SECRET": SECRET, "AOER_PORT": str(port), "AOER_HOME": str(tmp_path)}
    logs = [tmp_path / f"serve{i}.log" for i in range(2)]
    servers = [start_aoer(db_url, log, "serve", "--reuse-port", **env) for log in logs]
    try:
        deadline = time.monotonic() + WAIT_S
        while not all("API listening" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
            assert all(s.poll() is None for s in servers), "a replica failed to bind"
            time.sleep(0.1)
        token = TokenService(SECRET).mint("admin")
        for _ in range(20):  # new connections each time: the kernel spreads them
            assert get(port, "/api/tenants", token) is not None
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        assert [server.wait(30) for server in servers] == [0, 0]


def test_a_taken_port_is_one_error_naming_it(aoer: AoerCli) -> None:
    """Without --reuse-port a port another process listens on is refused at once: one
    `error:` line naming the address and what to change, exit 1, nothing left running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = aoer("serve", "--port", str(port), AOER_JWT_SECRET=SECRET)
    assert done.returncode == 1, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "AOER_PORT" in line
