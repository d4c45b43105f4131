"""Chaos harness (issue 11): kill, stop and starve the real processes; count what survives.

Creates its own scratch PostgreSQL cluster (initdb in a temp dir, trust auth, a free port,
the socket in the temp dir; removed at the end, also on failure or Ctrl-C), runs `aoer
migrate`, registers the fleet in SQL, then plays the scenarios of bench/chaos_scenarios.py
against real `aoer worker` and `aoer serve` processes and client processes. Prints one
table; exits 1 on any lost or duplicated job, or, with --strict, on any missed target.

    python bench/chaos.py            # the full run (`make chaos`, ~5-10 minutes)
    python bench/chaos.py --quick    # the CI size (`make chaos-quick`, < 60 s)
"""

import argparse
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg

import chaos_ledger as ledger
import chaos_scenarios as scenarios
from chaos_cluster import ScratchCluster
from chaos_fleet import Fleet, aoer_cmd
from chaos_stage import Context, Options, Row

EXIT_OK, EXIT_LOSS, EXIT_HARNESS = 0, 1, 2
SCENARIOS = ("a", "b", "c", "d")
FULL = Options(
    tenants=30_000,
    jobs=100_000,
    workers=3,
    lease_s=10.0,
    short_lease_s=3.0,
    batch_size=1000,
    kills=12,
    kill_every_s=4.0,
    hung_clients=12,
    readyz_cap_s=90.0,
    recovery_s=180.0,
    busy_loops=2,
)
QUICK = Options(
    tenants=2_000,
    jobs=4_000,
    workers=2,
    lease_s=3.0,
    short_lease_s=3.0,
    batch_size=100,
    kills=3,
    kill_every_s=0.6,
    hung_clients=4,
    readyz_cap_s=8.0,
    recovery_s=30.0,
    busy_loops=2,
)
HEADER = (
    "| scenario | jobs | lost | duplicated | stuck | failed | taken back from live workers"
    " | 5xx | seconds to recover | deadlocks | 'lost the lease' logs |"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short CI version")
    parser.add_argument("--tenants", type=int, help="dealerships registered")
    parser.add_argument("--jobs", type=int, help="jobs enqueued per scenario")
    parser.add_argument("--workers", type=int, help="worker processes (d runs one more)")
    parser.add_argument("--lease", type=float, help="AOER_LEASE_SECONDS for a-c")
    parser.add_argument("--short-lease", type=float, help="AOER_LEASE_SECONDS for d")
    parser.add_argument("--batch-size", type=int, help="AOER_BATCH_SIZE")
    parser.add_argument("--kills", type=int, help="SIGKILLs in scenario a")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="e.g. a,c")
    parser.add_argument("--strict", action="store_true", help="missed targets fail too")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs)")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    base = QUICK if args.quick else FULL
    chosen = {
        "tenants": args.tenants,
        "jobs": args.jobs,
        "workers": args.workers,
        "lease_s": args.lease,
        "short_lease_s": args.short_lease,
        "batch_size": args.batch_size,
        "kills": args.kills,
    }
    values = {**vars(base), **{k: v for k, v in chosen.items() if v is not None}}
    if args.jobs is None and args.tenants is not None:
        values["jobs"] = args.tenants * base.jobs // base.tenants
    return Options(**values)


def setup(cluster: ScratchCluster, root: Path, options: Options) -> Context:
    cluster.create()
    env = Fleet.clean_env(
        DATABASE_URL=cluster.url,
        AOER_HOME=str(root / "home"),
        AOER_JWT_SECRET=secrets.token_hex(32),
        CRON_SECRET=secrets.token_hex(16),
        AOER_RUN_CRON="false",
        AOER_MODEL_SCHEDULE="false",
        AOER_LOG_EACH_TENANT="false",
        AOER_HOST="127.0.0.1",
    )
    ctx = Context(cluster, root, env, "", ledger.tenant_ids(options.tenants), options, False)
    # Side by side: minting a token needs only the secret, not the database.
    with ThreadPoolExecutor(2) as pool:
        minting = pool.submit(run_cli, ctx, "token", "--role", "admin", "--ttl", "1d")
        migrate = run_cli(ctx, "migrate")
        token = minting.result()
    if migrate.returncode != 0:
        raise RuntimeError(f"aoer migrate failed: {migrate.stderr.strip()[-500:]}")
    if token.returncode != 0:
        raise RuntimeError(f"aoer token failed: {token.stderr.strip()[-500:]}")
    ctx.token = token.stdout.strip().splitlines()[-1]
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgrowlocks")
            ctx.has_rowlocks = True
        except psycopg.Error as exc:
            print(f"pgrowlocks unavailable ({exc}); open claims will not be seen", file=sys.stderr)
        ledger.register_fleet(conn, options.tenants)
    return ctx


def run_cli(ctx: Context, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        aoer_cmd(*args),
        env=ctx.env,
        cwd=ctx.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def plan(only: str) -> list[tuple[str, Callable[[Context], Row]]]:
    steps: list[tuple[str, Callable[[Context], Row]]] = []
    wanted = {part.strip() for part in only.split(",")}
    if "a" in wanted:
        steps.append(("a", scenarios.kill_workers))
    if "b" in wanted:
        steps.append(("b", scenarios.hung_worker))
    if "c" in wanted:
        steps.append(("c fast", lambda ctx: scenarios.restart_database(ctx, "fast")))
        steps.append(("c immediate", lambda ctx: scenarios.restart_database(ctx, "immediate")))
    if "d" in wanted:
        steps.append(("d", scenarios.short_lease))
    return steps


def render(rows: list[Row], header_lines: list[str]) -> str:
    out = [*header_lines, "", HEADER, "|---|" + "---:|" * 10]
    for r in rows:
        xx = "—" if r.five_xx is None else str(r.five_xx)
        out.append(
            f"| {r.scenario} | {r.jobs:,} | {r.lost} | {r.duplicated} | {r.stuck} | {r.failed}"
            f" | {r.taken_live} | {xx} | {r.recover} | {r.deadlocks} | {r.lease_warnings} |"
        )
    out.append("")
    for r in rows:
        out.append(f"- **{r.scenario}**: " + "; ".join(r.notes))
    targets = [(r.scenario, t) for r in rows for t in r.targets]
    if targets:
        out += ["", "Targets (issue 11; they fail the run only with --strict):", ""]
        out += [
            f"- {'PASS' if t.ok else 'MISS'} {name}: {t.text} — {t.measured}" for name, t in targets
        ]
    return "\n".join(out)


def describe(ctx: Context, options: Options, started: float) -> list[str]:
    o = options
    return [
        f"# Chaos run, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {time.time() - started:.0f} s",
        "",
        f"- {o.tenants:,} tenants, up to {o.jobs:,} jobs a scenario, {o.workers} workers"
        f" (d: {o.workers + 1}), batches of {o.batch_size}, lease {o.lease_s:g} s"
        f" (d: {o.short_lease_s:g} s)",
        f"- scratch PostgreSQL {ctx.cluster.version()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}; {os.getloadavg()[0]:.1f} load at the end",
    ]


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks end every process and the cluster."""
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    options = options_from(args)
    signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="aoer-chaos-"))
    print(f"scratch cluster and logs in {root}", file=sys.stderr)
    cluster = ScratchCluster(root)
    started = time.time()
    rows: list[Row] = []
    code = EXIT_OK
    try:
        ctx = setup(cluster, root, options)
        for name, run in plan(args.only):
            print(f"== {name} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
            scenario_started = time.time()
            row = run(ctx)
            row.notes.append(f"scenario took {time.time() - scenario_started:.0f} s")
            rows.append(row)
        print(render(rows, describe(ctx, options, started)), flush=True)
    except Exception:
        traceback.print_exc()
        code = EXIT_HARNESS
        if rows:
            print(render(rows, [f"# Chaos run (incomplete: {len(rows)} rows)"]), flush=True)
    finally:
        if args.keep:
            cluster.stop()
            print(f"kept {root}", file=sys.stderr)
        else:
            cluster.destroy()
    if code == EXIT_OK and any(r.lost or r.duplicated for r in rows):
        code = EXIT_LOSS
    if code == EXIT_OK and args.strict and any(not t.ok for r in rows for t in r.targets):
        code = EXIT_LOSS
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
