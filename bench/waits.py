"""Sample what every busy backend of one database waits on, every ~50 ms, during a run.

    .venv/bin/python bench/waits.py URL [--interval 0.05] [--output waits.jsonl]

Polls `pg_stat_activity` for the database's non-idle backends (plus autovacuum workers and
the checkpointer), names each statement after the queue.sql query it runs, and asks
`pg_blocking_pids` who holds the lock whenever a backend waits on one. Stops on SIGINT or
SIGTERM (or after --duration, or when the server ends its session: a harness dropping its
database) and prints, per query, how many samples found it running,
waiting on what, and behind whom; --output keeps every sample as JSON lines. Sessions ask
for nothing special, so it works against any server (issue 17: slow first batches).
"""

import argparse
import json
import signal
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import psycopg
from psycopg.rows import dict_row

SAMPLE_SQL = """
SELECT extract(epoch FROM clock_timestamp())::float8 AS at,
       a.pid, a.backend_type, a.state, a.wait_event_type, a.wait_event,
       a.query AS query,
       extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS query_s,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_s,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocked_by
FROM pg_stat_activity a
WHERE a.pid <> pg_backend_pid()
  AND ((a.datname = current_database() AND a.state IS DISTINCT FROM 'idle'
        AND a.backend_type = 'client backend')
       OR a.backend_type = 'autovacuum worker'
       OR (a.backend_type = 'checkpointer' AND a.wait_event IS DISTINCT FROM 'CheckpointerMain'))
"""

# Distinctive text of each statement the workers and the harness run -> a short name.
LABELS = (
    # pg_stat_activity keeps the first 1 KiB of a query: match on its leading comment.
    ("Finish the jobs this worker still holds", "complete_jobs"),
    ("Extend the leases of the given jobs", "renew_leases"),
    ("SET status = 'processing'", "claim_jobs"),
    ("SET lease_expires_at = now() + make_interval", "renew_leases"),
    ("lease_expired", "reclaim_expired"),
    ("aoer_summary_updated", "notify_summaries"),
    ("INSERT INTO aoer_queue AS q", "enqueue (tick)"),
    ("min(head.scheduled_at)", "next_due_at"),
    ("LISTEN", "listen"),
    ("pg_notify('aoer_queue'", "notify_queue"),
)


def label(row: dict[str, Any]) -> str:
    backend_type: str = row["backend_type"]
    if backend_type != "client backend":
        query = (row["query"] or "").strip()
        return backend_type + (f": {query[:60]}" if query else "")
    query = row["query"] or ""
    for needle, name in LABELS:
        if needle in query:
            return name
    if row["state"] == "idle in transaction":
        return "idle in transaction"
    return " ".join(query.split())[:60]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between samples")
    parser.add_argument("--duration", type=float, default=0, help="stop after S seconds (0: never)")
    parser.add_argument("--output", help="write every sample as a JSON line here")
    args = parser.parse_args(argv)

    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    out = open(args.output, "w") if args.output else None  # noqa: SIM115
    samples = 0
    by_label: Counter[str] = Counter()
    waits: dict[str, Counter[str]] = defaultdict(Counter)
    blockers: dict[str, Counter[str]] = defaultdict(Counter)
    longest: dict[str, float] = defaultdict(float)
    started = time.monotonic()
    with psycopg.connect(args.url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("SET application_name = 'aoer_waits'")
        while not stop and (not args.duration or time.monotonic() - started < args.duration):
            try:
                rows = conn.execute(SAMPLE_SQL).fetchall()
            except psycopg.OperationalError as exc:  # the run dropped its database: report
                print(f"sampling stopped: {exc}".strip(), file=sys.stderr)
                break
            samples += 1
            labels = {r["pid"]: label(r) for r in rows}
            for r in rows:
                name = labels[r["pid"]]
                by_label[name] += 1
                wait = f"{r['wait_event_type']}:{r['wait_event']}" if r["wait_event"] else "CPU"
                waits[name][wait] += 1
                longest[name] = max(longest[name], r["query_s"] or 0.0)
                for pid in r["blocked_by"] or ():
                    blockers[name][labels.get(pid, f"pid {pid}")] += 1
                if out:
                    r["label"] = name
                    out.write(json.dumps(r, default=str) + "\n")
            time.sleep(args.interval)
    if out:
        out.close()
    print(f"{samples} samples every {args.interval * 1000:.0f} ms")
    print("| statement | samples | longest s | waits (samples) | blocked by (samples) |")
    print("|---|---:|---:|---|---|")
    for name, count in by_label.most_common():
        wait_text = ", ".join(f"{w} {n}" for w, n in waits[name].most_common(4))
        block_text = ", ".join(f"{b} {n}" for b, n in blockers[name].most_common(3))
        print(f"| {name} | {count} | {longest[name]:.2f} | {wait_text} | {block_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
