"""Answer-engine observations benchmark (DESIGN §14, issue 15).

1. Import rate: `aoer observations import FILE.csv` (the real CLI, as a subprocess, start-up
   included) of `--import-rows` rows: 30 days x 100 prompts x 6 engines per dealership
   (18,000 rows each), with signals derived (the default).
2. GET /api/aoer/engines latency (p50/p99, sequential keep-alive requests against a real
   `aoer serve`) for an imported dealership, with `--dealers` dealerships in the tables. The
   imported dealerships have their raw observations; the others get their daily rollups
   (`answer_observation_days`, `answer_competitor_days`, `answer_cited_url_days`, what the
   endpoint reads) generated in SQL at the same shape (31 days x 6 engines, 8 competitors,
   20 cited pages), because 180 million raw rows do not fit this machine's time budget.

    .venv/bin/python bench/observations_bench.py [--import-rows 1000000] [--dealers 10000]
                                                 [--requests 2000] [--keep-database]
"""

import argparse
import contextlib
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from aoer.api.auth import TokenService
from aoer.db.schema import migrate

SERVER_URL = os.environ.get("AOER_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "aoer_bench_observations"
SECRET = "bench-secret-" + "0123456789abcdef" * 3
ENGINES = ("chatgpt", "perplexity", "gemini", "ai_overviews", "copilot", "claude")
DAYS, PROMPTS = 30, 100
ROWS_PER_DEALER = DAYS * PROMPTS * len(ENGINES)
RIVALS = [f"Rival Motors {i}" for i in range(8)]
HEADER = "dealer_id,date,engine,prompt,mentioned,position,cited,cited_urls,competitors,sentiment\n"


def database_url() -> str:
    return SERVER_URL.rsplit("/", 1)[0] + "/" + DATABASE


def recreate() -> None:
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    import asyncio

    asyncio.run(migrate(database_url()))


def write_csv(path: Path, dealers: list[uuid.UUID], rows: int) -> None:
    rng = random.Random(15)
    today = datetime.now(UTC).date()
    days = [(today - timedelta(d)).isoformat() for d in range(DAYS)]
    written = 0
    with path.open("w") as out:
        out.write(HEADER)
        for dealer in dealers:
            pages = [f"https://d{dealer.hex[:8]}.example/p{i}" for i in range(20)]
            for day in days:
                lines = []
                for engine in ENGINES:
                    for p in range(PROMPTS):
                        if written == rows:
                            break
                        mentioned = rng.random() < 0.45
                        cited = rng.random() < 0.25
                        lines.append(
                            f"{dealer},{day},{engine},prompt {p} about cars,"
                            f"{'true' if mentioned else 'false'},"
                            f"{rng.randint(1, 5) if mentioned else ''},"
                            f"{'true' if cited else 'false'},"
                            f"{'|'.join(rng.sample(pages, 2)) if cited else ''},"
                            f"{'|'.join(rng.sample(RIVALS, rng.randint(0, 3)))},"
                            f"{rng.randint(-100, 100) / 100}\n"
                        )
                        written += 1
                out.write("".join(lines))


def add_tenants(conn: psycopg.Connection, ids: list[uuid.UUID], prefix: str) -> None:
    with conn.cursor().copy("COPY tenants (id, name) FROM STDIN") as copy:
        for n, tenant in enumerate(ids):
            copy.write_row((tenant, f"{prefix} {n}"))


def synthetic_rollups(conn: psycopg.Connection, ids: list[uuid.UUID]) -> None:
    """Daily rollups for dealerships without raw rows, at the imported ones' shape."""
    conn.execute(
        """
        INSERT INTO answer_observation_days
        SELECT t, current_date - d, e, 100, m, (m / 2)::int, 150, m, m * 3, 100, 12.5
        FROM unnest(%(ids)s::uuid[]) t, generate_series(0, 30) d,
             unnest(%(engines)s::text[]) e, LATERAL (SELECT 20 + (random() * 60)::int AS m) r
        """,
        {"ids": ids, "engines": list(ENGINES)},
    )
    conn.execute(
        """
        INSERT INTO answer_competitor_days
        SELECT t, current_date - d, n, (random() * 120)::int
        FROM unnest(%(ids)s::uuid[]) t, generate_series(0, 30) d, unnest(%(rivals)s::text[]) n
        """,
        {"ids": ids, "rivals": RIVALS},
    )
    conn.execute(
        """
        INSERT INTO answer_cited_url_days
        SELECT t, current_date - d, 'https://d' || left(t::text, 8) || '.example/p' || p,
               (random() * 40)::int
        FROM unnest(%(ids)s::uuid[]) t, generate_series(0, 30) d, generate_series(0, 19) p
        """,
        {"ids": ids},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOER_")}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url(),
        AOER_JWT_SECRET=SECRET,
        AOER_HOME="/tmp/aoer-bench-observations",
        AOER_LOG_FORMAT="text",
    )
    return env


@contextlib.contextmanager
def serving() -> Iterator[int]:
    port = free_port()
    log = Path("/tmp/aoer-bench-observations-serve.log")
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "aoer", "serve", "--port", str(port)],
            env=cli_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "API listening" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"aoer serve did not start; see {log}")
            time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def latencies(port: int, tenants: list[uuid.UUID], requests: int, token: str) -> list[float]:
    found = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        for i in range(requests + 50):  # the first 50 warm up
            tenant = tenants[i % len(tenants)]
            start = time.perf_counter()
            response = client.get(f"/api/aoer/engines?tenantId={tenant}")
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise SystemExit(f"GET /api/aoer/engines: {response.status_code} {response.text}")
            if i >= 50:
                found.append(elapsed)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--dealers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()

    recreate()
    imported = [uuid.uuid4() for _ in range(-(-args.import_rows // ROWS_PER_DEALER))]
    others = [uuid.uuid4() for _ in range(max(0, args.dealers - len(imported)))]
    with psycopg.connect(database_url(), autocommit=True) as conn:
        add_tenants(conn, imported, "Imported")
        add_tenants(conn, others, "Synthetic")
    csv = Path("/tmp/aoer-bench-observations.csv")
    start = time.perf_counter()
    write_csv(csv, imported, args.import_rows)
    print(f"wrote {args.import_rows:,} rows ({csv.stat().st_size / 1e6:.0f} MB) "
          f"in {time.perf_counter() - start:.1f} s")  # fmt: skip

    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "aoer", "observations", "import", str(csv)],
        env=cli_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if result.returncode != 0:
        raise SystemExit(f"import failed: {result.stderr[-2000:]}")
    print(result.stdout.strip())
    print(f"import: {args.import_rows:,} rows in {seconds:.1f} s = "
          f"{args.import_rows / seconds:,.0f} rows/s; the CLI process used {cpu:.1f} s of CPU "
          f"(1-min load before: {load:.1f} on {os.cpu_count()} cores)")  # fmt: skip

    start = time.perf_counter()
    with psycopg.connect(database_url(), autocommit=True) as conn:
        for i in range(0, len(others), 1000):
            synthetic_rollups(conn, others[i : i + 1000])
        conn.execute("VACUUM ANALYZE")
        sizes = conn.execute(
            "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM answer_observations),"
            " (SELECT count(*) FROM answer_observation_days),"
            " (SELECT count(*) FROM answer_competitor_days),"
            " (SELECT count(*) FROM answer_cited_url_days)"
        ).fetchone()
    print(f"rollups for {len(others):,} more dealerships in {time.perf_counter() - start:.0f} s;"
          f" tenants, observations, engine-days, competitor-days, url-days = {sizes}")  # fmt: skip

    tokens = TokenService(SECRET)
    token_makers: tuple[tuple[str, Callable[[uuid.UUID], str]], ...] = (
        ("admin", lambda _t: tokens.mint("admin")),
        ("tenant", lambda t: tokens.mint("tenant", tenant_id=t)),
    )
    with serving() as port:
        for label, token_for in token_makers:
            load = os.getloadavg()[0]
            samples: list[float] = []
            for tenant in imported[:4]:
                samples += latencies(port, [tenant], args.requests // 4, token_for(tenant))
            print(f"GET /api/aoer/engines ({label} token, {len(samples)} requests): "
                  f"p50 {statistics.median(samples):.1f} ms, p99 {percentile(samples, 0.99):.1f}"
                  f" ms, max {max(samples):.1f} ms (1-min load before: {load:.1f})")  # fmt: skip
    if not args.keep_database:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
