"""Alerts' cost to recomputes (issue 14): two rows for bench/README.md.

1. A fleet refresh with three alert rules active on every tenant (one organisation holding the
   whole fleet, rules risk_level_up, grade_down and score_drop {5 points, 7 days}) against the
   same refresh with no rule: target ≤ 1.15x. Rounds run both on the same data (which goes
   first alternates); each row is the median. Every tenant already has a recompute event (a
   priming refresh), so each batch really runs the transition checks: the previous event's
   lookup, score_drop's reference, the rule joins.
2. A receiver taking 10 s per request does not change recompute throughput: the same refresh
   with a delivery loop busy sending pending alerts to it (16 in flight, each held 10 s),
   against the refresh with delivery turned off.

Workers run in this process (`build_worker`, drain mode for 1., a running worker for 2.), as
`aoer worker` would, over a database this script creates (`--url`, default aoer_alerts_bench)
and drops at the end.

    .venv/bin/python bench/alerts_bench.py --tenants 10000 --rounds 3
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from aoer.bootstrap import ProcessKind, open_services
from aoer.bootstrap.worker import build_worker
from aoer.config import Settings
from aoer.constants import CRON_PRIORITY
from aoer.db.pool import connect
from aoer.db.schema import migrate
from aoer.queue import BatchOutcome
from aoer.types import CompletedJob
from common import database_name, drop_database, recreate_database, with_database
from dataset import generate

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/aoer_alerts_bench"
RECEIVER = Path(__file__).resolve().parent.parent / "tests" / "alerts" / "receiver.py"
SLOW_S = 10
PENDING_DELIVERIES = 2000


def settings(url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": url,
        "AOER_RUN_CRON": False,
        "AOER_LOG_EACH_TENANT": False,
        "AOER_ALERT_DELIVERY": False,
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


async def execute(url: str, *statements: str) -> None:
    conn = await connect(url, autocommit=True)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def refresh(url: str, batch_ms: list[float] | None = None, **extra: object) -> float:
    """Queue every active tenant (the cron tick) and drain: seconds from tick to done. Each
    batch's own time (claim excluded) is appended to `batch_ms`."""

    def observe(outcome: BatchOutcome) -> None:
        if batch_ms is not None and outcome.completed:
            batch_ms.append(outcome.elapsed_ms)

    async with open_services(settings(url, **extra), kind=ProcessKind.WORKER) as services:
        started = time.perf_counter()
        async with services.store.session() as session:
            await session.jobs.enqueue_all_active(CRON_PRIORITY)
        await build_worker(services, drain=True, on_batch=observe).run()
        return time.perf_counter() - started


async def raise_statement_ms(url: str, repeats: int) -> list[float]:
    """The alert statement alone for batches of 1,000 recomputed tenants, rolled back."""
    async with (
        open_services(settings(url), kind=ProcessKind.WORKER) as services,
        services.store.session() as session,
    ):
        ids = [t.id for t in await session.tenants.list(limit=1000 * repeats)]
        # As complete_jobs reports them: unchanged scores (no transition, as in most batches).
        jobs = [
            CompletedJob(
                uuid.uuid4(),
                t,
                "low",
                Decimal(50),
                Decimal("0.2"),
                0.0,
                Decimal(50),
                Decimal("0.2"),
                0,
            )
            for t in ids
        ]
        timings = []
        for i in range(repeats):
            batch = jobs[i * 1000 : (i + 1) * 1000]
            async with session.conn.transaction(force_rollback=True):
                started = time.perf_counter()
                await session.alerts.raise_for_batch(batch, [])
                timings.append((time.perf_counter() - started) * 1000)
        return timings


@dataclass
class Refresh:
    seconds: float  # from the tick to the last job completed
    cpu_s: float  # this process's CPU meanwhile (the worker: batches and delivery loop)
    batch_ms: list[float]  # each batch's own time (claim excluded)


async def refresh_beside_delivery(url: str, deliver: bool) -> Refresh:
    """A running worker (with or without its delivery loop) refreshes the fleet."""
    extra = {"AOER_ALERT_DELIVERY": deliver, "AOER_ALERT_HTTP_TIMEOUT_SECONDS": SLOW_S + 5}
    done = asyncio.Event()
    expected: list[int] = []
    batch_ms: list[float] = []
    async with open_services(settings(url, **extra), kind=ProcessKind.WORKER) as services:

        def observe(outcome: BatchOutcome) -> None:
            if outcome.completed:
                batch_ms.append(outcome.elapsed_ms)
            if expected and worker.stats.completed >= expected[0]:
                done.set()

        worker = build_worker(services, on_batch=observe)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(2)  # the delivery loop fills its slots with slow requests
        started, cpu = time.perf_counter(), time.process_time()
        async with services.store.session() as session:
            expected.append(await session.jobs.enqueue_all_active(CRON_PRIORITY))
        await done.wait()
        found = Refresh(time.perf_counter() - started, time.process_time() - cpu, batch_ms)
        worker.stop()
        await task
        return found


def start_receiver(work: Path, secret: str) -> tuple[subprocess.Popen[bytes], str]:
    """The test suite's receiver process, answering every request after SLOW_S seconds."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "mode").write_text(f"sleep {SLOW_S}")
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    receiver = subprocess.Popen(
        [
            sys.executable,
            str(RECEIVER),
            secret,
            str(work / "received.jsonl"),
            str(port_file),
            str(work / "mode"),
        ]
    )
    while not port_file.exists():
        time.sleep(0.05)
    return receiver, port_file.read_text()


async def main(args: argparse.Namespace) -> None:
    url = args.url
    recreate_database(url)
    await migrate(url)
    conn = await connect(url, autocommit=True)
    try:
        rows = await generate(conn, args.tenants)
    finally:
        await conn.close()
    print(f"{args.tenants} tenants, {rows} signal rows; priming refresh…", flush=True)
    await execute(
        url,
        "INSERT INTO organizations (name) VALUES ('Bench fleet')",
        "UPDATE tenants SET org_id = (SELECT id FROM organizations)",
        "VACUUM ANALYZE tenants",
    )
    await refresh(url)
    rules = (
        "INSERT INTO alert_rules (scope, org_id, kind, params, created_by)"
        " SELECT 'org', o.id, k.kind, k.params::jsonb, 'bench' FROM organizations o,"
        " (VALUES ('risk_level_up', '{}'), ('grade_down', '{}'),"
        "        ('score_drop', '{\"points\": 5, \"days\": 7}')) AS k (kind, params)"
    )
    timings: dict[str, list[float]] = {"none": [], "rules": []}
    batches: dict[str, list[float]] = {"none": [], "rules": []}
    statement: dict[str, list[float]] = {"none": [], "rules": []}
    for round_no in range(0 if args.delivery_only else args.rounds):
        # Alternate which goes first: the second refresh of a round runs on the first's dead
        # rows and warmed caches, which favoured whichever went second.
        for variant in ("none", "rules") if round_no % 2 == 0 else ("rules", "none"):
            await execute(url, "DELETE FROM alert_rules", "VACUUM ANALYZE aoer_queue")
            if variant == "rules":
                await execute(url, rules)
            timings[variant].append(await refresh(url, batches[variant]))
            statement[variant] += await raise_statement_ms(url, 5)
        print(
            f"round {round_no + 1}: none {timings['none'][-1]:.2f}s,"
            f" 3 rules {timings['rules'][-1]:.2f}s",
            flush=True,
        )
    alerts = await scalar(url, "SELECT count(*) FROM alerts")

    # 2. a receiver that takes 10 s per request
    secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"
    receiver, port = await asyncio.to_thread(start_receiver, Path(args.workdir), secret)
    try:
        await execute(
            url,
            "INSERT INTO alert_endpoints (url, secret, created_by)"
            f" VALUES ('http://127.0.0.1:{port}/slow', '{secret}', 'bench')",
            # Pending deliveries to it, due now: the delivery loop keeps its slots full.
            "INSERT INTO alerts (tenant_id, kind, dedup_key, data)"
            " SELECT id, 'grade_down', 'bench:' || id, '{}' FROM tenants"
            f" ORDER BY id LIMIT {PENDING_DELIVERIES}",
            "INSERT INTO alert_deliveries (alert_id, tenant_id, endpoint_id)"
            " SELECT a.id, a.tenant_id, e.id FROM alerts a, alert_endpoints e"
            " WHERE a.dedup_key LIKE 'bench:%'",
        )
        slow: dict[str, list[Refresh]] = {"off": [], "slow receiver": []}
        for round_no in range(args.rounds):
            for deliver in (False, True) if round_no % 2 == 0 else (True, False):
                found = await refresh_beside_delivery(url, deliver=deliver)
                slow["slow receiver" if deliver else "off"].append(found)
            off_run, busy_run = slow["off"][-1], slow["slow receiver"][-1]
            print(
                f"round {round_no + 1}: delivery off {off_run.seconds:.2f}s"
                f" (cpu {off_run.cpu_s:.2f}s), delivering to a {SLOW_S}s receiver"
                f" {busy_run.seconds:.2f}s (cpu {busy_run.cpu_s:.2f}s)",
                flush=True,
            )
        attempted = await scalar(url, "SELECT count(*) FROM alert_deliveries WHERE attempts > 0")
    finally:
        receiver.kill()
        receiver.wait()

    def median_of(mode: str, value: Callable[[Refresh], float]) -> float:
        return statistics.median(value(run) for run in slow[mode])

    off = median_of("off", lambda r: r.seconds)
    busy = median_of("slow receiver", lambda r: r.seconds)
    off_cpu = median_of("off", lambda r: r.cpu_s)
    busy_cpu = median_of("slow receiver", lambda r: r.cpu_s)
    off_batch = statistics.median(ms for r in slow["off"] for ms in r.batch_ms)
    busy_batch = statistics.median(ms for r in slow["slow receiver"] for ms in r.batch_ms)
    print()
    print(f"| run ({args.tenants:,} tenants, median of {args.rounds}) | seconds | ratio |")
    print("|---|---|---|")
    if not args.delivery_only:
        none, with_rules = statistics.median(timings["none"]), statistics.median(timings["rules"])
        print(f"| refresh, no alert rule | {none:.2f} | 1.00 |")
        print(f"| refresh, 3 rules on every tenant | {with_rules:.2f} | {with_rules / none:.2f} |")
        b_none, b_rules = statistics.median(batches["none"]), statistics.median(batches["rules"])
        print(f"| one 1,000-job batch, no alert rule (ms) | {b_none:.0f} | 1.00 |")
        print(f"| one 1,000-job batch, 3 rules (ms) | {b_rules:.0f} | {b_rules / b_none:.2f} |")
        s_none = statistics.median(statement["none"])
        s_rules = statistics.median(statement["rules"])
        print(f"| the alert statement alone, no rule (ms per 1,000 tenants) | {s_none:.1f} | |")
        print(f"| the alert statement alone, 3 rules (ms per 1,000 tenants) | {s_rules:.1f} | |")
    print(f"| refresh, delivery off | {off:.2f} | 1.00 |")
    print(f"| refresh, delivering to a {SLOW_S} s receiver | {busy:.2f} | {busy / off:.2f} |")
    print(f"| the worker process's CPU, delivery off (s) | {off_cpu:.2f} | 1.00 |")
    print(
        f"| the worker process's CPU, delivering to a {SLOW_S} s receiver (s)"
        f" | {busy_cpu:.2f} | {busy_cpu / off_cpu:.2f} |"
    )
    print(f"| one batch, delivery off (ms) | {off_batch:.0f} | 1.00 |")
    print(
        f"| one batch, delivering to a {SLOW_S} s receiver (ms)"
        f" | {busy_batch:.0f} | {busy_batch / off_batch:.2f} |"
    )
    print(f"(alerts raised by the rules: {alerts}; deliveries attempted meanwhile: {attempted})")
    if not args.keep_database:
        drop_database(url)


async def scalar(url: str, sql: str) -> object:
    conn = await connect(url, autocommit=True)
    try:
        cur = await conn.execute(sql)
        row = await cur.fetchone()
        return next(iter(row.values())) if row else None
    finally:
        await conn.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--delivery-only", action="store_true", help="only the slow-receiver rounds (2.)"
    )
    parser.add_argument("--workdir", default="/tmp/aoer-alerts-bench")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    database_name(args.url)  # a URL with a database name
    with_database(args.url, database_name(args.url))
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
