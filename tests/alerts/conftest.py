"""A real webhook receiver process and a real SMTP server for the alert tests."""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from aoer.alerts.rules import new_secret
from tests.acceptance.conftest import aoer  # noqa: F401 (the CLI fixture, for test_cli.py)

RECEIVER = Path(__file__).with_name("receiver.py")
START_TIMEOUT_S = 15.0
SMTP_USER, SMTP_PASSWORD = "alerts", "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """The receiver process: `start()` (again after `stop()`, on the same port), `mode(...)`,
    and `records()`: one entry per request it answered or holds."""

    workdir: Path
    secret: str = field(default_factory=new_secret)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/aoer"

    @property
    def record_file(self) -> Path:
        return self.workdir / "received.jsonl"

    def mode(self, mode: str) -> None:
        (self.workdir / "mode").write_text(mode)

    def start(self) -> None:
        port_file = self.workdir / "port"
        port_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(RECEIVER),
                self.secret,
                str(self.record_file),
                str(port_file),
                str(self.workdir / "mode"),
                str(self.port),
            ]
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the webhook receiver did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def records(self) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        # The receiver may be writing its last line right now: only whole lines count.
        whole = self.record_file.read_text().rpartition("\n")[0]
        return [json.loads(line) for line in whole.splitlines() if line]

    def delivered_ids(self) -> list[str]:
        """webhook-ids answered 2xx (a correct sender makes each appear once)."""
        return [r["id"] for r in self.records() if r["status"] == 200]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    workdir = tmp_path / "receiver"
    workdir.mkdir()
    found = Receiver(workdir)
    found.mode("ok")
    try:
        yield found
    finally:
        found.stop()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
    ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok)


@dataclass
class SmtpServer:
    mailbox: Mailbox
    port: int

    @property
    def url(self) -> str:
        return f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{self.port}"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd on a real socket (its own thread), requiring the login in `url`."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer(mailbox, port)
    finally:
        controller.stop()
