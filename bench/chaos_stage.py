"""One chaos scenario's stage: its processes, its jobs, its client and its row of the table."""

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

import chaos_ledger as ledger
from chaos_cluster import ScratchCluster, free_port
from chaos_fleet import Fleet, Proc

BENCH_DIR = Path(__file__).resolve().parent
CLIENT_SCRIPT = BENCH_DIR / "chaos_client.py"
READY_TIMEOUT_S = 60.0
WORKER_ACTIVE_LINE = "[AOER] AOER Orchestrator worker active"
LEASE_LOST_LINE = "lost the lease of"
# log_line_prefix '%m [%p] %a ': the application name of the backend that was chosen to fail.
DEADLOCK_VICTIM = re.compile(r"\] (\S*) ERROR:  deadlock detected")
SLOT_ERROR_LINE = "worker slot"
KEEPER_ERROR_LINE = "lease keeper error"


@dataclass
class Target:
    text: str
    measured: str
    ok: bool


@dataclass
class Row:
    scenario: str
    jobs: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    failed: int = 0
    taken_live: int = 0
    five_xx: int | None = None  # None: no client ran in this scenario
    recover: str = "—"
    deadlocks: int = 0
    lease_warnings: int = 0
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


@dataclass
class Options:
    tenants: int
    jobs: int
    workers: int
    lease_s: float  # scenarios a-c
    short_lease_s: float  # scenario d
    batch_size: int
    kills: int
    kill_every_s: float
    hung_clients: int
    readyz_cap_s: float
    recovery_s: float
    busy_loops: int


@dataclass
class Context:
    cluster: ScratchCluster
    root: Path
    env: dict[str, str]
    token: str
    tenant_ids: list[UUID]
    options: Options
    has_rowlocks: bool  # pgrowlocks could be created: uncommitted claims can be seen


@dataclass
class Answer:
    kind: str
    start: float
    seconds: float
    status: int
    error: str | None
    job: str | None

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500


def wait_for(check: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(poll_s)
    return check()


def worker_active(proc: Proc) -> Callable[[], bool]:
    """A check for `wait_for`: has `proc` logged that its worker is active?"""
    return lambda: WORKER_ACTIVE_LINE in proc.log_text()


class Stage:
    """Runs one scenario: a reset queue, its own processes and logs, then the tally."""

    def __init__(self, ctx: Context, name: str, lease_s: float) -> None:
        self.ctx = ctx
        self.name = name
        self.lease_s = lease_s
        self.logs = ctx.root / "logs" / name
        self.logs.mkdir(parents=True)
        self.fleet = Fleet(self.logs, ctx.env, ctx.root)
        self.conn: ledger.Conn = psycopg.connect(ctx.cluster.url, autocommit=True)
        ledger.reset(self.conn)
        self.log_offset = ctx.cluster.log_size()
        self.feeder: ledger.Feeder | None = None
        self.api_port: int | None = None
        self.client_out = self.logs / "client.jsonl"
        self.replacements = 0
        self.drained_at: float | None = None
        self._workers = 0

    # processes ---------------------------------------------------------------------------

    def worker(self, **env: str) -> Proc:
        self._workers += 1
        settings = {
            "AOER_LEASE_SECONDS": str(self.lease_s),
            "AOER_BATCH_SIZE": str(self.ctx.options.batch_size),
            **env,
        }
        return self.fleet.worker(f"w{self._workers}", **settings)

    def start(self, workers: int, *, api: bool = False) -> list[Proc]:
        """Start the API and `workers` workers side by side; return once all are up."""
        procs = []
        if api:
            self.api_port = free_port()
            procs.append(self.fleet.serve("api", self.api_port))
        procs += [self.worker() for _ in range(workers)]
        if api and not wait_for(self.api_ready, READY_TIMEOUT_S):
            raise RuntimeError(f"aoer serve did not become ready: {procs[0].last_line()}")
        for proc in procs[1:] if api else procs:
            if not wait_for(worker_active(proc), READY_TIMEOUT_S):
                raise RuntimeError(f"{proc.name} did not start: {proc.last_line()}")
        return procs

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def api_ready(self) -> bool:
        try:
            return httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def burst(self, path: str, requests: int, concurrency: int) -> int:
        """`requests` GETs, `concurrency` at a time (fills the API's pool); returns failures."""

        def one(_: int) -> bool:
            try:
                headers = {"Authorization": f"Bearer {self.ctx.token}"}
                answer = httpx.get(self.base_url + path, headers=headers, timeout=30)
                return answer.status_code < 500
            except httpx.HTTPError:
                return False

        with ThreadPoolExecutor(concurrency) as pool:
            return sum(1 for ok in pool.map(one, range(requests)) if not ok)

    def supervise(self) -> None:
        """Replace workers that exited on their own, as a process supervisor would."""
        for proc in self.fleet.reap():
            if proc.kind == "worker":
                self.replacements += 1
                self.worker()

    def client(self, loops: list[dict[str, Any]], timeout_s: float = 60.0) -> Proc:
        plan = {"base": self.base_url, "token": self.ctx.token, "timeout_s": timeout_s}
        plan_file = self.logs / "client-plan.json"
        plan_file.write_text(json.dumps({**plan, "loops": loops}))
        cmd = [sys.executable, str(CLIENT_SCRIPT), str(plan_file), str(self.client_out)]
        return self.fleet.spawn("client", "client", cmd)

    def stop_client(self, proc: Proc, timeout_s: float = 70.0) -> None:
        proc.expected_end = True
        proc.popen.terminate()
        try:
            proc.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.sigkill()
        self.fleet.reap()

    def answers(self) -> list[Answer]:
        if not self.client_out.exists():
            return []
        out = []
        for line in self.client_out.read_text().splitlines():
            raw = json.loads(line)
            out.append(
                Answer(
                    raw["kind"],
                    raw["start"],
                    raw["seconds"],
                    raw["status"],
                    raw.get("error"),
                    raw.get("job"),
                )
            )
        return out

    # jobs ------------------------------------------------------------------------------

    def feed(self, jobs: int, *, endless: bool = False) -> ledger.Feeder:
        """Enqueue `jobs` in the background, topping the queue up (`endless`: beyond `jobs`
        until the feeder's `finish` or `stop`)."""
        low_water = 4 * self.ctx.options.batch_size * max(self.ctx.options.workers, 2)
        self.feeder = ledger.Feeder(
            self.ctx.cluster.url, self.ctx.tenant_ids, jobs, low_water, endless=endless
        )
        self.feeder.start()
        return self.feeder

    def completed(self) -> int:
        return ledger.scalar(
            self.conn, "SELECT count(*) FROM aoer_queue WHERE status = 'completed'"
        )

    def processing(self) -> int:
        return ledger.scalar(
            self.conn, "SELECT count(*) FROM aoer_queue WHERE status = 'processing'"
        )

    def reconnect(self) -> None:
        self.conn.close()
        self.ctx.cluster.wait_ready()
        self.conn = psycopg.connect(self.ctx.cluster.url, autocommit=True)

    # the row ---------------------------------------------------------------------------

    def finish(self, row: Row) -> Row:
        """Wait for the feeder and the drain (the recovery window), stop everything, count."""
        options = self.ctx.options
        if self.feeder is not None:
            wait_for(self.feeder.done, options.recovery_s + options.jobs / 200)
            self.feeder.stop()
        drained = ledger.wait_drained(self.ctx.cluster.url, options.recovery_s)
        if drained is None:
            row.notes.append(f"not drained {options.recovery_s:.0f} s after the chaos ended")
        else:
            self.drained_at = time.time()
        self.supervise()
        # A worker still importing has no SIGTERM handler yet: let replacements come up first.
        for proc in self.fleet.live_workers():
            wait_for(worker_active(proc), READY_TIMEOUT_S)
        codes = self.fleet.close()
        bad_exits = {name: code for name, code in codes.items() if code != 0}
        if bad_exits:
            row.notes.append(f"exit codes on SIGTERM (None = had to be killed): {bad_exits}")
        if self.fleet.unexpected_exits:
            row.notes.append("exited on their own: " + "; ".join(self.fleet.unexpected_exits))
        if self.replacements:
            row.notes.append(f"{self.replacements} worker(s) replaced after exiting")
        known = list(self.feeder.ids) if self.feeder else []
        known += [UUID(a.job) for a in self.answers() if a.job]
        t = ledger.tally(self.conn, known)
        row.jobs, row.stuck, row.failed, row.duplicated = t.jobs, t.stuck, t.failed, t.duplicated
        row.lost = t.lost
        if t.failed:
            row.notes.append(
                f"failed: {t.failed - t.failed_superseded} out of attempts,"
                f" {t.failed_superseded} closed with attempts left because the tenant's"
                " waiting job carries the retry"
            )
        if t.waiting_due:
            row.notes.append(f"{t.waiting_due} jobs still queued and due")
        if t.deferred:
            row.notes.append(f"{t.deferred} jobs waiting out a retry backoff (not counted lost)")
        if t.completed_without_event:
            row.notes.append(f"{t.completed_without_event} completed jobs without their event")
        if t.missing:
            row.notes.append(f"{t.missing} job ids handed out that are not in aoer_queue")
        self._count_takebacks(row)
        server_log = self.ctx.cluster.log_since(self.log_offset)
        victims = DEADLOCK_VICTIM.findall(server_log)
        row.deadlocks = sum(1 for app in victims if app != ledger.FEEDER_APP)
        if victims:
            row.notes.append(
                "deadlocks by victim: "
                + ", ".join(f"{app or '?'} {victims.count(app)}" for app in sorted(set(victims)))
                + f" (the harness's feeder, {ledger.FEEDER_APP}, not counted)"
            )
        row.lease_warnings = self.fleet.count_in_logs(LEASE_LOST_LINE)
        slot_errors = self.fleet.count_in_logs(SLOT_ERROR_LINE)
        keeper_errors = self.fleet.count_in_logs(KEEPER_ERROR_LINE)
        if slot_errors or keeper_errors:
            row.notes.append(
                f"worker logs: {slot_errors} 'worker slot … error', {keeper_errors}"
                " 'lease keeper error'"
            )
        return row

    def close(self) -> None:
        """End whatever is still running (also after an error); idempotent."""
        if self.feeder is not None:
            self.feeder.stop()
        self.fleet.close()
        self.conn.close()

    def _count_takebacks(self, row: Row) -> None:
        live = dead = stopped = unknown = 0
        for worker_id, when in ledger.takebacks(self.conn):
            try:
                pid = int(worker_id.rsplit(":", 2)[1])
            except (IndexError, ValueError):
                unknown += 1
                continue
            proc = self.fleet.by_pid(pid)
            if proc is None:
                unknown += 1
            elif proc.running_at(when):
                live += 1
            elif proc.ended is not None and when >= proc.ended:
                dead += 1
            else:
                stopped += 1
        row.taken_live = live
        total = live + dead + stopped + unknown
        if total:
            row.notes.append(
                f"leases taken back: {total} ({dead} from killed/exited workers,"
                f" {stopped} from stopped ones, {live} from live ones, {unknown} unknown)"
            )
