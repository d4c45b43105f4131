"""Shared pieces of the benchmark: the database, resets, snapshots, child processes, timing."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from aoer.db.pool import Connection, connect

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/aoer_bench"

# Tables every method writes; emptied before each method so all start from the same state.
RESET_SQL = "TRUNCATE aoer_summary, metrics_events, aoer_failures, aoer_queue"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def recreate_database(url: str) -> None:
    """Drop and create the benchmark database (through the server's `postgres` database)."""
    name = database_name(url)
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing odd database name {name!r}")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")


def drop_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def reset(url: str) -> None:
    """Empty the output tables and the queue; vacuum so every method meets the same heap."""
    conn = await connect(url)
    try:
        await conn.execute(RESET_SQL)
        await conn.execute("VACUUM ANALYZE aoer_summary, metrics_events, aoer_queue")
    finally:
        await conn.close()


async def scalar(conn: Connection, sql: str, params: Any = None) -> Any:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None
    return next(iter(row.values()))


async def snapshot(url: str, method: str) -> int:
    """Copy aoer_summary (score, risk, metrics as text) into bench_results under `method`."""
    conn = await connect(url)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM bench_results WHERE method = %s", (method,))
            cur = await conn.execute(
                "INSERT INTO bench_results (method, tenant_id, aoer_score, visibility_risk,"
                " metrics) SELECT %s, tenant_id, aoer_score::text, visibility_risk::text,"
                " metrics::text FROM aoer_summary",
                (method,),
            )
            rows = cur.rowcount
        await conn.execute("ANALYZE bench_results")
        return rows
    finally:
        await conn.close()


async def count_events(url: str) -> int:
    conn = await connect(url)
    try:
        return int(
            await scalar(
                conn, "SELECT count(*) FROM metrics_events WHERE event_type = 'aoer_recompute'"
            )
        )
    finally:
        await conn.close()


@dataclass
class Mismatch:
    method: str
    differing: int
    missing: int
    examples: list[str] = field(default_factory=list)


async def compare(url: str, reference: str, method: str, *, complete: bool) -> Mismatch:
    """Rows of `method` that differ from `reference`; `complete` also counts missing tenants."""
    conn = await connect(url)
    try:
        cur = await conn.execute(
            "SELECT m.tenant_id::text AS tenant_id, r.aoer_score AS ref_score,"
            " m.aoer_score, r.visibility_risk AS ref_risk, m.visibility_risk,"
            " r.metrics AS ref_metrics, m.metrics"
            " FROM bench_results m"
            " LEFT JOIN bench_results r ON r.method = %s AND r.tenant_id = m.tenant_id"
            " WHERE m.method = %s AND (r.tenant_id IS NULL"
            "   OR (r.aoer_score, r.visibility_risk, r.metrics)"
            "      IS DISTINCT FROM (m.aoer_score, m.visibility_risk, m.metrics))",
            (reference, method),
        )
        rows = await cur.fetchall()
        missing = 0
        if complete:
            missing = int(
                await scalar(
                    conn,
                    "SELECT count(*) FROM bench_results r WHERE r.method = %s AND NOT EXISTS"
                    " (SELECT 1 FROM bench_results m WHERE m.method = %s"
                    "  AND m.tenant_id = r.tenant_id)",
                    (reference, method),
                )
            )
        examples = [
            f"{r['tenant_id']}: {r['ref_score']}/{r['ref_risk']} {r['ref_metrics']}"
            f"  vs  {r['aoer_score']}/{r['visibility_risk']} {r['metrics']}"
            for r in rows[:3]
        ]
        return Mismatch(method, len(rows), missing, examples)
    finally:
        await conn.close()


# How often a child's own peak RSS is read while it runs (`Child`).
MEMORY_SAMPLE_S = 0.1


def own_peak_rss_kb(pid: int) -> int | None:
    """The process's own peak RSS since it exec'd (VmHWM, KiB); None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None  # gone, or a zombie: its memory is already released


@dataclass
class Child:
    """A child process and its own peak RSS, sampled while it runs.

    Not the `ru_maxrss` that `wait4` reports: Linux folds into it the peak of the memory the
    child held before its exec, a copy of this harness (1.8 GiB reported for a worker of
    77 MiB once the harness held a 1,000,000-tenant check). VmHWM only grows, so a thread
    reading it every `MEMORY_SAMPLE_S` until the process is gone misses at most that last
    interval of its life."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    peak_rss_kb: int = 0
    exit_code: int | None = None
    _sampler: threading.Thread = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._sampler = threading.Thread(target=self._sample, name=f"rss-{self.name}", daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while (peak := own_peak_rss_kb(self.proc.pid)) is not None:
            self.peak_rss_kb = max(self.peak_rss_kb, peak)
            time.sleep(MEMORY_SAMPLE_S)

    def stop(self) -> None:
        # os.kill, not Popen.send_signal: the latter polls, and a reap there would steal the
        # exit status from `wait`.
        if self.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)

    async def wait(self, timeout_s: float | None = None) -> int:
        """Reap the child; `peak_rss_kb` then holds its own peak."""
        if self.exit_code is not None:
            return self.exit_code

        def reap() -> int:
            _, status = os.waitpid(self.proc.pid, 0)
            self._sampler.join()  # it stops at the exit, before the reap
            return os.waitstatus_to_exitcode(status)

        code = await asyncio.wait_for(asyncio.to_thread(reap), timeout_s)
        self.proc.returncode = code
        self.exit_code = code
        return code


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    handle = log_path.open("wb")
    proc = subprocess.Popen(
        argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
    )
    handle.close()
    return Child(name, proc, log_path)


def child_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "AOER_LOG_EACH_TENANT": "false",
            "RUN_CRON": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def aoer_cmd(*args: str) -> list[str]:
    return [str(VENV_BIN / "aoer"), *args]


def python_cmd(script: str, *args: str) -> list[str]:
    return [sys.executable, str(BENCH_DIR / script), *args]


async def run_to_end(child: Child, what: str, timeout_s: float = 3600) -> None:
    code = await child.wait(timeout_s)
    if code != 0:
        tail = child.log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{what} exited {code}; log tail:\n{tail}")


def now() -> float:
    return time.perf_counter()
