"""Scale benchmark (issue 16): a fleet refresh at N tenants and at N/10, the floor against this
system with two running workers, on the same data generated in SQL (60 days per tenant).

For each size it reports: the floor's and the system's seconds and their ratio; the tick's own
time (the scheduler's chunked tick, fired in-process through the real ScheduledJob) and the time
from the tick's start to its first committed chunk and to the first committed batch of
summaries; the latency of 10 urgent jobs enqueued behind the whole fleet's `low` backlog; and
the API's cached-read p99 (one `aoer serve`, 64 connections) while a refresh runs against
idle. Then time(N) / time(N/10) for both methods, and the targets of issue 16. Every
measurement but the urgent jobs (10 samples) runs `--repeats` rounds (default 3) and each
verdict is on their medians: one round a size put two runs of the same code on either side
of three of the four ratio targets (bench/results-scale.md, the thirteenth and fourteenth).

Before generating anything it estimates the disk the run needs and refuses, naming both
numbers, when the database's file system has less free space.

    .venv/bin/python bench/scale.py                    # 1,000,000 and 100,000 tenants
    .venv/bin/python bench/scale.py --tenants 20000    # 20,000 and 2,000: a check, minutes

Uses AOER_BENCH_DATABASE_URL (default aoer_bench on the local server; recreated and dropped).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent))


import api_bench
from aoer.api.auth import TokenService
from aoer.bootstrap import ProcessKind, session_limits
from aoer.bootstrap.worker import scheduled_jobs
from aoer.config import Settings
from aoer.constants import RECOMPUTE_TICK
from aoer.db.pool import Pool, connect, open_pool
from aoer.db.schema import migrate
from aoer.queue import enqueue
from aoer.store import QueuePolicy, Session, Store
from aoer.worker.scheduler import fire_if_due
from common import (
    BENCH_DIR,
    DEFAULT_URL,
    Child,
    aoer_cmd,
    child_env,
    drop_database,
    recreate_database,
    reset,
    scalar,
    spawn,
)
from dataset import DAYS, generate
from floor import fastest_floor
from watch import SummaryWatcher

FULL_TENANTS = 1_000_000
URGENT_SAMPLES = 10
API_TENANTS = 1_000  # distinct summaries the API load reads
# Disk, measured at 100,000 tenants x 60 days (bench/results-scale.md): a signal row with its
# key ~164 B; one refresh's event (~600 B), queue row (~700 B) and summary (~410 B) with their
# indexes ~1.7 KB a tenant. Plus room for WAL and temporary files (the floor's aggregate).
SIGNAL_BYTES_PER_TENANT_DAY = 170
REFRESH_BYTES_PER_TENANT = 2_000
REFRESHES_KEPT = 2
HEADROOM_BYTES = 4 * 2**30
TARGETS = {
    "ratio": 1.25,  # system / floor at the large size
    "growth": 11.0,  # time(N) / time(N/10)
    "first_batch_s": 1.0,  # tick start → first committed batch
    "urgent_ms": 500.0,  # median and max behind the backlog
    "api_p99": 2.0,  # cached-read p99 during the refresh / idle
}


def say(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", flush=True)


def disk_needed(tenants: int) -> int:
    signals = tenants * DAYS * SIGNAL_BYTES_PER_TENANT_DAY
    return signals + tenants * REFRESH_BYTES_PER_TENANT * REFRESHES_KEPT + HEADROOM_BYTES


async def free_disk(url: str) -> tuple[int, str]:
    """Free bytes on the database's file system (its data directory when this process can
    see it, else the root file system of this host), and which path was measured."""
    conn = await connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        try:
            path = str(await scalar(conn, "SHOW data_directory"))
        except Exception:
            path = "/"
    finally:
        await conn.close()
    try:
        return shutil.disk_usage(path).free, path
    except OSError:
        return shutil.disk_usage("/").free, "/ (the data directory is not readable here)"


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


@dataclass
class Size:
    tenants: int
    signal_rows: int = 0
    generate_s: float = 0.0
    floor_s: list[float] = field(default_factory=list)
    system_s: list[float] = field(default_factory=list)
    tick_ms: list[float] = field(default_factory=list)
    first_chunk_ms: list[float] = field(default_factory=list)
    first_batch_ms: list[float] = field(default_factory=list)
    urgent_ms: list[float] = field(default_factory=list)
    urgent_left: int = 0
    # per round: the cached-read p99 idle, then while a refresh runs (ms), the cores the
    # `aoer serve` process used over each of the two windows, the summaries committed in
    # the refresh's window
    api_idle_p99s: list[float] = field(default_factory=list)
    api_refresh_p99s: list[float] = field(default_factory=list)
    api_cores: list[tuple[float, float]] = field(default_factory=list)
    api_overlaps: list[int] = field(default_factory=list)
    database_bytes: int = 0
    signal_bytes: int = 0

    @property
    def floor(self) -> float:
        return statistics.median(self.floor_s)

    @property
    def system(self) -> float:
        return statistics.median(self.system_s)

    @property
    def round_ratios(self) -> list[float]:
        """system / floor of each round: the two ran back to back on the same data."""
        return [s / f for f, s in zip(self.floor_s, self.system_s, strict=True)]

    @property
    def api_ratios(self) -> list[float]:
        """Each round's p99 during the refresh over the idle p99 measured just before it."""
        return [
            busy / idle if idle else float("inf")
            for idle, busy in zip(self.api_idle_p99s, self.api_refresh_p99s, strict=True)
        ]

    @property
    def api_ratio(self) -> float:
        return statistics.median(self.api_ratios)

    @property
    def api_overlap(self) -> str:
        """How much of the refresh the API's windows saw."""
        ended = sum(n >= self.tenants for n in self.api_overlaps)
        if ended:
            return (
                f"the refresh ended inside the window in {ended} of {len(self.api_overlaps)} "
                "round(s): too small a fleet to load the API for the whole window"
            )
        low, high = min(self.api_overlaps), max(self.api_overlaps)
        return (
            f"{low:,}{f'–{high:,}' if high != low else ''} of {self.tenants:,} summaries "
            "committed in the window"
        )


class ScaleBench:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.log_dir = Path(tempfile.mkdtemp(prefix="aoer-scale-"))
        self.watcher = SummaryWatcher()
        self.ticks = 0
        self.job = next(
            j for j in scheduled_jobs(Settings(AOER_RUN_CRON=True)) if j.name == RECOMPUTE_TICK
        )

    async def measure(self, tenants: int) -> Size:
        size = Size(tenants)
        say(f"{tenants:,} tenants: creating the database and generating {DAYS} days in SQL")
        recreate_database(self.url)
        await migrate(self.url)
        conn = await connect(self.url)
        try:
            started = time.perf_counter()
            size.signal_rows = await generate(conn, tenants)
            size.generate_s = time.perf_counter() - started
            size.signal_bytes = int(
                await scalar(
                    conn,
                    "SELECT sum(pg_total_relation_size(relid))"
                    " FROM pg_partition_tree('aiv_raw_signals') WHERE isleaf",
                )
            )
            cur = await conn.execute("SELECT id FROM tenants ORDER BY id LIMIT %s", (API_TENANTS,))
            self.api_tenants = [UUID(str(r["id"])) for r in await cur.fetchall()]
        finally:
            await conn.close()
        say(f"generated {size.signal_rows:,} signal rows in {size.generate_s:.0f} s")
        await self.watcher.start(self.url)
        workers = [
            spawn(f"worker{i}_{tenants}", aoer_cmd("worker"), child_env(self.url), self.log_dir)
            for i in range(2)
        ]
        try:
            for worker in workers:
                await self._wait_for_log(worker, "worker active")
            await asyncio.sleep(1.0)  # LISTEN is in place right after the start line
            for round_no in range(self.args.repeats):
                size.floor_s.append(await self.floor())
                say(f"round {round_no + 1}: floor {size.floor_s[-1]:.2f} s")
                await self.refresh(size)
                say(f"round {round_no + 1}: system {size.system_s[-1]:.2f} s")
            await self.urgent_behind_backlog(size)
            await self.api_during_refresh(size)
            size.database_bytes = await self._database_bytes()
        finally:
            for worker in workers:
                worker.stop()
            for worker in workers:
                await worker.wait(120)
            await self.watcher.stop()
        return size

    async def floor(self) -> float:
        seconds, plan, _ = await fastest_floor(self.url, reset)
        say(f"floor: {seconds:.2f} s with the faster plan ({plan})")
        return seconds

    def _tick_pool(self) -> AbstractAsyncContextManager[Pool]:
        """Sessions for the tick as a worker's scheduler has them: a worker's limits, at its
        CPU priority (AOER_WORKER_NICE, where the server has the prioritize extension)."""
        limits = session_limits(ProcessKind.WORKER, Settings())
        return open_pool(self.url, max_size=2, limits=limits)

    async def _tick(self, store: Store) -> dict[str, object]:
        """Fire the recompute tick as the scheduler does (a fresh tick each time)."""
        self.ticks += 1
        now = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=self.ticks)
        async with store.session() as session:
            result = await fire_if_due(session, self.job, "bench-scale", now)
        assert result is not None
        return result

    async def refresh(self, size: Size) -> None:
        """Tick → every summary committed, with the two workers already running."""
        await reset(self.url)
        self.watcher.forget()
        async with self._tick_pool() as pool:
            store = Store(pool, self.url)
            started = time.perf_counter()
            result = await self._tick(store)
        last = await self.watcher.wait_count(size.tenants, timeout_s=3600)
        size.system_s.append(last - started)
        size.tick_ms.append(float(str(result["tickMs"])))
        size.first_chunk_ms.append(float(str(result["firstChunkMs"])))
        size.first_batch_ms.append((min(self.watcher.seen.values()) - started) * 1000)

    async def urgent_behind_backlog(self, size: Size) -> None:
        await reset(self.url)
        self.watcher.forget()
        async with self._tick_pool() as pool:
            ticking = asyncio.create_task(self._tick(Store(pool, self.url)))
            conn = await connect(self.url)
            try:
                await self.watcher.wait_count(min(size.tenants // 10, 5_000), timeout_s=600)
                for sample in range(URGENT_SAMPLES):
                    cur = await conn.execute(
                        "SELECT tenant_id FROM aoer_queue WHERE status = 'queued'"
                        " ORDER BY scheduled_at DESC, tenant_id LIMIT 1 OFFSET %s",
                        (sample * 7,),
                    )
                    row = await cur.fetchone()
                    if row is None:
                        break
                    tenant = row["tenant_id"]
                    assert isinstance(tenant, UUID)
                    began = time.perf_counter()
                    await enqueue(Session(conn, QueuePolicy()), tenant, "urgent")
                    done = await self.watcher.wait_for(tenant, timeout_s=120)
                    size.urgent_ms.append((done - began) * 1000)
                    await asyncio.sleep(0.2)
                size.urgent_left = int(
                    await scalar(conn, "SELECT count(*) FROM aoer_queue WHERE status = 'queued'")
                )
            finally:
                await conn.close()
                await ticking
        await self.watcher.wait_count(size.tenants, timeout_s=3600)

    async def api_during_refresh(self, size: Size) -> None:
        """Cached summary reads (64 connections) idle, then while a refresh runs; `--repeats`
        rounds of the two, one `aoer serve` throughout."""
        tokens = TokenService(api_bench.SECRET)
        admin = tokens.mint("admin")
        requests = [
            api_bench.get(f"/api/aoer/summary?tenantId={t}", admin) for t in self.api_tenants
        ]
        seconds = self.args.api_seconds
        with (
            api_bench.serving(f"scale-{size.tenants}", 1, url=self.url) as port,
            api_bench.load_process() as process,
        ):
            server = ProcessClock(serving_pid(port))
            prime = api_bench.Result("prime", "prime")
            await api_bench.load_apart(prime, port, requests, 1.0, process)
            for round_no in range(self.args.repeats):
                idle = api_bench.Result("idle", "cached")
                with server.window() as idle_cores:
                    await api_bench.load_apart(idle, port, requests, seconds, process)
                await reset(self.url)
                self.watcher.forget()
                busy = api_bench.Result("refresh", "cached")
                async with self._tick_pool() as pool:
                    ticking = asyncio.create_task(self._tick(Store(pool, self.url)))
                    with server.window() as busy_cores:
                        await api_bench.load_apart(busy, port, requests, seconds, process)
                    overlapped = len(self.watcher.seen)
                    await ticking
                await self.watcher.wait_count(size.tenants, timeout_s=3600)
                size.api_idle_p99s.append(idle.p99)
                size.api_refresh_p99s.append(busy.p99)
                size.api_cores.append((idle_cores[0], busy_cores[0]))
                size.api_overlaps.append(overlapped)
                say(
                    f"round {round_no + 1}: API cached p99 idle {idle.p99:.1f} ms, during the "
                    f"refresh {busy.p99:.1f} ms ({overlapped:,} of {size.tenants:,} summaries "
                    "committed in the window)"
                )

    async def _database_bytes(self) -> int:
        conn = await connect(self.url)
        try:
            return int(await scalar(conn, "SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()

    async def _wait_for_log(self, child: Child, text: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in child.log_path.read_text(errors="replace"):
                return
            await asyncio.sleep(0.05)
        raise SystemExit(f"{child.name} did not log {text!r}:\n{child.log_path.read_text()}")


def serving_pid(port: int) -> int:
    """The `aoer serve` process `api_bench.serving` started on `port`."""
    marker = f"serve\0--port\0{port}\0"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_text():
                    return int(entry.name)
            except OSError:
                continue
    raise SystemExit(f"no `aoer serve --port {port}` process found")


class ProcessClock:
    """CPU time of one process from /proc/PID/stat, as cores used over a window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @contextmanager
    def window(self) -> Iterator[list[float]]:
        """Yields a list that holds the cores used once the block ends."""
        cores: list[float] = []
        cpu, wall = self.seconds(), time.perf_counter()
        yield cores
        cores.append((self.seconds() - cpu) / (time.perf_counter() - wall))


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def add_run(earlier: str, text: str) -> str:
    """`bench/results-scale.md` keeps every run: the new one first, under the file's title
    and one heading level down, the earlier runs (and what was written about them) after it."""
    title, _, runs = earlier.partition("\n")
    return f"{title}\n\n#{text.strip()}\n\n{runs.lstrip()}"


def rounds(values: list[float]) -> str:
    """Each round's own value, after a verdict on several: how far apart they were."""
    if len(values) < 2:
        return ""
    return f" (rounds: {', '.join(f'{v:.2f}' for v in values)})"


def render(large: Size, small: Size, args: argparse.Namespace, load: str) -> str:
    def row(s: Size) -> str:
        urgent = (
            f"{statistics.median(s.urgent_ms):.0f} / {max(s.urgent_ms):.0f} ({len(s.urgent_ms)})"
            if s.urgent_ms
            else "— (drained first)"
        )
        return (
            f"| {s.tenants:,} | {s.floor:.2f} | {s.system:.2f} | {s.system / s.floor:.2f}× | "
            f"{statistics.median(s.tick_ms):,.0f} | {statistics.median(s.first_chunk_ms):,.0f} | "
            f"{statistics.median(s.first_batch_ms):,.0f} | {urgent} | "
            f"{statistics.median(s.api_idle_p99s):.1f} / "
            f"{statistics.median(s.api_refresh_p99s):.1f} | "
            f"{gib(s.database_bytes)} ({s.signal_bytes / s.signal_rows:.0f} B per signal row) |"
        )

    growth_floor = large.floor / small.floor
    growth_system = large.system / small.system
    first = statistics.median(large.first_batch_ms) / 1000
    lines = [
        f"# Scale benchmark ({large.tenants:,} and {small.tenants:,} tenants × {DAYS} days)",
        "",
        f"`bench/scale.py --tenants {large.tenants}` (`make bench-scale` runs 1,000,000); "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; load average (1 min) "
        f"{load}. Each number is the median of {args.repeats} round(s); the refresh's ratio "
        "is the medians' (system over floor), the API's the median of its rounds' (each round "
        "an idle window, then one during a refresh); each round's own ratios follow the table. "
        "The system is two "
        "running `aoer worker` processes, the tick fired in-process through the scheduler's "
        "chunked recompute job (AOER_TICK_CHUNK, default 20,000).",
        "",
        "| tenants | floor s | system s | ratio | tick ms | tick → first chunk committed ms "
        "| tick → first summaries committed ms | urgent behind backlog median / max ms (n) "
        "| API cached p99 idle / refresh ms | database size |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
        row(large),
        row(small),
        "",
        f"- time({large.tenants:,}) / time({small.tenants:,}): floor {growth_floor:.2f}, "
        f"system {growth_system:.2f} → {verdict(growth_system <= TARGETS['growth'])} "
        f"≤ {TARGETS['growth']:.0f}",
        f"- system / floor at {large.tenants:,}: {large.system / large.floor:.2f}"
        f"{rounds(large.round_ratios)} → "
        f"{verdict(large.system / large.floor <= TARGETS['ratio'])} ≤ {TARGETS['ratio']}",
        f"- tick start → first committed summaries: {first:.2f} s → "
        f"{verdict(first <= TARGETS['first_batch_s'])} ≤ {TARGETS['first_batch_s']:.0f} s",
    ]
    if large.urgent_ms:
        worst = max(statistics.median(large.urgent_ms), max(large.urgent_ms))
        lines.append(
            f"- urgent behind the backlog: median {statistics.median(large.urgent_ms):.0f} ms, "
            f"max {max(large.urgent_ms):.0f} ms ({large.urgent_left:,} low jobs still queued at "
            f"the last sample) → {verdict(worst <= TARGETS['urgent_ms'])} ≤ "
            f"{TARGETS['urgent_ms']:.0f} ms"
        )
    ratio = large.api_ratio
    idle_cores = statistics.median(c[0] for c in large.api_cores)
    busy_cores = statistics.median(c[1] for c in large.api_cores)
    lines += [
        f"- API cached-read p99 during the refresh / idle: {ratio:.2f}"
        f"{rounds(large.api_ratios)} → {verdict(ratio <= TARGETS['api_p99'])} ≤ "
        f"{TARGETS['api_p99']:.0f} ({large.api_overlap}; the API "
        f"process used {idle_cores:.2f} of a core idle, {busy_cores:.2f} during the refresh)",
        "- each round's floor / system s: "
        + "; ".join(
            f"{s.tenants:,}: "
            + ", ".join(f"{f:.2f} / {y:.2f}" for f, y in zip(s.floor_s, s.system_s, strict=True))
            for s in (large, small)
        ),
        f"- data generation: {large.generate_s:.0f} s for {large.signal_rows:,} signal rows; "
        f"{small.generate_s:.0f} s for {small.signal_rows:,}",
        "",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    url = os.environ.get("AOER_BENCH_DATABASE_URL", DEFAULT_URL)
    large_n = args.tenants
    small_n = max(large_n // 10, 100)
    needed = disk_needed(large_n)
    free, where = await free_disk(url)
    say(f"disk: {large_n:,} tenants need about {gib(needed)}; {gib(free)} free on {where}")
    if free < needed:
        print(
            f"refusing: {large_n:,} tenants × {DAYS} days need about {gib(needed)} of disk "
            f"(signals ~{SIGNAL_BYTES_PER_TENANT_DAY} B per tenant-day, ~"
            f"{REFRESH_BYTES_PER_TENANT:,} B per tenant per kept refresh, "
            f"{gib(HEADROOM_BYTES)} for WAL and temporary files) and {where} has "
            f"{gib(free)} free. Free space or pass a smaller --tenants.",
            file=sys.stderr,
        )
        return 2
    load_before = os.getloadavg()[0]
    bench = ScaleBench(args, url)
    try:
        large = await bench.measure(large_n)
        small = await bench.measure(small_n)
    finally:
        if not args.keep_database:
            drop_database(url)
    text = render(large, small, args, f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(text)
    output = Path(args.output) if args.output else BENCH_DIR / "results-scale.md"
    if args.output or large_n == FULL_TENANTS:
        earlier = output.read_text() if not args.output and output.exists() else None
        output.write_text(text if earlier is None else add_run(earlier, text))
        say(f"wrote {output}; logs in {bench.log_dir}")
    else:
        say(f"a check at {large_n:,} tenants: not written (--output to keep it); logs in "
            f"{bench.log_dir}")  # fmt: skip
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tenants", type=int, default=FULL_TENANTS, help="the large size (the small is a tenth)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds per size of the floor and the refresh, and of the API idle and during a "
        "refresh (each verdict is on their medians)",
    )
    parser.add_argument(
        "--api-seconds", type=float, default=5.0, help="measured seconds of each API load"
    )
    parser.add_argument("--output", help="where to write the table (default: only at 1,000,000)")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    if args.tenants < 1000:
        parser.error("--tenants must be at least 1000")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse_args())))
