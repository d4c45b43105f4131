"""The processes a chaos scenario runs: `aoer worker`/`aoer serve`, clients, busy loops.

Every process is started through the real command line and remembered with when it was
alive (started, SIGSTOPped, resumed, killed or exited), so a lease taken back from a worker
can be judged against what that worker was doing at the time.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
TERM_TIMEOUT_S = 20.0  # a worker finishes the batch in hand on SIGTERM
APP_NAME_PREFIX = "chaos-"  # PGAPPNAME: pg_stat_activity tells each process's backends apart
# Inherited settings that must not leak into the processes (they would reach another server).
DROPPED_ENV = ("AOER_", "DATABASE_URL", "REDIS_URL", "CRON_SECRET", "RUN_CRON", "PG")


def aoer_cmd(*args: str) -> list[str]:
    """The installed `aoer` entry point next to this Python, else `python -m aoer`."""
    script = VENV_BIN / "aoer"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "aoer", *args]


@dataclass
class Proc:
    """One child process and the wall-clock intervals in which it was running."""

    name: str
    kind: str  # worker | api | client | busy
    popen: subprocess.Popen[bytes]
    log: Path
    started: float
    ended: float | None = None
    stopped: list[list[float]] = field(default_factory=list)  # [SIGSTOP, SIGCONT or end]
    killed: bool = False
    expected_end: bool = False
    term_sent: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def app_name(self) -> str:
        return APP_NAME_PREFIX + self.name

    def running_at(self, when: float) -> bool:
        """Alive and not stopped at `when` (epoch seconds)."""
        if when < self.started or (self.ended is not None and when >= self.ended):
            return False
        return not any(start <= when < end for start, end in self.stopped)

    def is_stopped(self) -> bool:
        return bool(self.stopped) and self.stopped[-1][1] == float("inf")

    def sigstop(self) -> float:
        os.kill(self.pid, signal.SIGSTOP)
        now = time.time()
        self.stopped.append([now, float("inf")])
        return now

    def sigcont(self) -> float:
        os.kill(self.pid, signal.SIGCONT)
        now = time.time()
        if self.is_stopped():
            self.stopped[-1][1] = now
        return now

    def sigkill(self) -> float:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        now = time.time()
        self._ended(now)
        self.killed = True
        self.expected_end = True
        self.popen.wait()
        return now

    def _ended(self, now: float) -> None:
        if self.ended is None:
            self.ended = now
        if self.is_stopped():
            self.stopped[-1][1] = now

    def send_term(self) -> None:
        """SIGTERM once (after SIGCONT, so a stopped process can act on it): a second one
        could land after the process removed its handler and kill it."""
        self.expected_end = True
        if self.popen.poll() is None and not self.term_sent:
            self.term_sent = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)

    def terminate(self, timeout_s: float = TERM_TIMEOUT_S) -> int | None:
        """SIGTERM and wait for the exit code; SIGKILL (and None) on timeout."""
        self.send_term()
        if self.popen.poll() is None:
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.sigkill()
                return None
        self._ended(time.time())
        return self.popen.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def last_line(self) -> str:
        lines = self.log_text().strip().splitlines()
        return lines[-1] if lines else ""


class Fleet:
    """Spawns and tracks one scenario's processes; `close` ends every one of them."""

    def __init__(self, logs: Path, env: dict[str, str], cwd: Path) -> None:
        self.logs = logs
        self.base_env = env
        self.cwd = cwd
        self.procs: list[Proc] = []
        self.unexpected_exits: list[str] = []

    @staticmethod
    def clean_env(**settings: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_ENV)}
        env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
        env.update(settings)
        return env

    def spawn(self, name: str, kind: str, cmd: list[str], **env: str) -> Proc:
        log = self.logs / f"{name}.log"
        child_env = {**self.base_env, "PGAPPNAME": APP_NAME_PREFIX + name, **env}
        with log.open("ab") as handle:
            popen = subprocess.Popen(
                cmd, env=child_env, stdout=handle, stderr=subprocess.STDOUT, cwd=self.cwd
            )
        proc = Proc(name, kind, popen, log, time.time())
        self.procs.append(proc)
        return proc

    def worker(self, name: str, **env: str) -> Proc:
        return self.spawn(name, "worker", aoer_cmd("worker"), **env)

    def serve(self, name: str, port: int, **env: str) -> Proc:
        return self.spawn(name, "api", aoer_cmd("serve", "--port", str(port)), **env)

    def busy_loops(self, count: int) -> list[Proc]:
        """Processes that only burn CPU, to keep every core busy."""
        loop = [sys.executable, "-c", "while True: pass"]
        return [self.spawn(f"busy{i}", "busy", loop) for i in range(count)]

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.kind == "worker"]

    def live_workers(self) -> list[Proc]:
        return [p for p in self.workers() if p.ended is None]

    def reap(self) -> list[Proc]:
        """Notice processes that exited on their own; returns them (once each)."""
        gone = []
        for proc in self.procs:
            if proc.ended is None and proc.popen.poll() is not None:
                proc._ended(time.time())
                if not proc.expected_end:
                    self.unexpected_exits.append(
                        f"{proc.name} (pid {proc.pid}) exited {proc.popen.returncode}:"
                        f" {proc.last_line()[:160]}"
                    )
                    gone.append(proc)
        return gone

    def by_pid(self, pid: int) -> Proc | None:
        for proc in self.procs:
            if proc.pid == pid:
                return proc
        return None

    def count_in_logs(self, text: str, kind: str = "worker") -> int:
        return sum(p.log_text().count(text) for p in self.procs if p.kind == kind)

    def close(self) -> dict[str, int | None]:
        """End everything still running (SIGTERM to all at once, SIGKILL after the timeout);
        returns each worker's and API's exit code (None: it had to be killed)."""
        codes: dict[str, int | None] = {}
        running = [p for p in self.procs if p.ended is None]
        for proc in running:
            if proc.kind in ("busy", "client"):
                proc.sigkill()
            else:
                proc.send_term()
        deadline = time.monotonic() + TERM_TIMEOUT_S
        for proc in running:
            if proc.kind in ("busy", "client"):
                continue
            codes[proc.name] = proc.terminate(max(deadline - time.monotonic(), 0.1))
        return codes
