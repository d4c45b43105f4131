"""Is the NOTIFY of each enqueue the limit? (issue 16) Enqueue transactions through pgbench,
with and without their NOTIFY, on an idle database and while two `aoer worker` processes drain
a kept-full backlog (their batches NOTIFY too).

PostgreSQL serialises the commits of every transaction that has sent a NOTIFY (it holds a
database-wide lock from before the commit record until the commit is durable), so notifying
enqueues queue behind each other's WAL flushes and behind the workers' batch commits. This
measures how much that costs, as the API's enqueue statement, at the API's pool size.

    .venv/bin/python bench/notify_bench.py [--tenants 2000] [--seconds 8] [--clients 10]
"""

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_bench import DATABASE, database_url, draining, seed

ENQUEUE = """\\set n random(1, {tenants})
BEGIN;
INSERT INTO aoer_queue AS q (tenant_id, priority, max_retries, scheduled_at)
SELECT t.id, 'medium', 3, now() FROM bench_ids b JOIN tenants t ON t.id = b.id
WHERE b.n = :n AND t.active
ON CONFLICT (tenant_id) WHERE status = 'queued' DO UPDATE
   SET priority = CASE WHEN aoer_priority_rank(EXCLUDED.priority) > q.priority_rank
                       THEN EXCLUDED.priority ELSE q.priority END,
       scheduled_at = least(q.scheduled_at, EXCLUDED.scheduled_at), updated_at = now()
RETURNING q.id;
{notify}
COMMIT;
"""


def pgbench(script: str, clients: int, seconds: float) -> tuple[float, float, float]:
    """(transactions/s, mean latency ms, p99 latency ms) of `script` for `seconds`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "enqueue.sql"
        path.write_text(script)
        log_prefix = Path(tmp) / "log"
        done = subprocess.run(
            ["pgbench", "-n", "-f", str(path), "-c", str(clients), "-j", "2", "-T",
             str(int(seconds)), "-l", "--log-prefix", str(log_prefix), database_url()],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        latencies = sorted(
            int(line.split()[2]) / 1000
            for log in Path(tmp).glob("log*")
            for line in log.read_text().splitlines()
        )
    tps = float(re.search(r"tps = ([0-9.]+)", done.stdout)[1])  # type: ignore[index]
    mean = sum(latencies) / len(latencies)
    return tps, mean, latencies[int(0.99 * (len(latencies) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=10, help="the API's pool size")
    args = parser.parse_args()
    ids, backlog = seed(args.tenants)
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_ids (n int PRIMARY KEY, id uuid NOT NULL)")
        conn.execute(
            "INSERT INTO bench_ids SELECT n, id FROM unnest(%s::uuid[]) WITH ORDINALITY u (id, n)",
            (ids,),
        )
    scripts = {
        "with NOTIFY": ENQUEUE.format(
            tenants=args.tenants, notify="SELECT pg_notify('aoer_queue', 'medium');"
        ),
        "without NOTIFY": ENQUEUE.format(tenants=args.tenants, notify=""),
    }
    rows = []
    try:
        for setting in ("idle", "2 workers draining"):
            with contextlib.ExitStack() as stack:
                top_up = (
                    stack.enter_context(draining("notify", backlog)) if setting != "idle" else None
                )
                for _ in range(2):  # interleaved, twice
                    for name, script in scripts.items():
                        if top_up:
                            top_up()  # requeue the backlog: the workers drain the whole round
                        tps, mean, p99 = pgbench(script, args.clients, args.seconds)
                        rows.append((setting, name, tps, mean, p99))
                        print(f"{setting:<20} {name:<15} {tps:8.0f} tx/s  mean {mean:6.1f} ms"
                              f"  p99 {p99:6.1f} ms", flush=True)  # fmt: skip
    finally:
        with psycopg.connect(
            database_url().rsplit("/", 1)[0] + "/postgres", autocommit=True
        ) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    print("| setting | enqueue | tx/s | mean ms | p99 ms |\n|---|---|---:|---:|---:|")
    for setting, name, tps, mean, p99 in rows:
        print(f"| {setting} | {name} | {tps:,.0f} | {mean:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
