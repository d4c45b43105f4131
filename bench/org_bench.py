"""Organisations and API keys (DESIGN §12): two small benchmarks against real `aoer serve`.

  * the fleet page: GET /dashboard/fleet (and its /dashboard/fleet/stats) as an organisation
    (one of 50, 200 dealerships each, Row Level Security on) against the same pages as an
    admin over all 10,000 dealerships: sequential requests, interleaved rounds, median and p90;
  * API-key authentication against a JWT on the cached summary read: 64 keep-alive
    connections (the load generator of `api_bench.py`), interleaved rounds, median round.

The host is shared and noisy: read ratios, not absolute numbers, and prefer small runs.

    .venv/bin/python bench/org_bench.py [--tenants 10000] [--orgs 50] [--rounds 5]
                                        [--pages 40] [--seconds 3]
"""

import argparse
import asyncio
import platform
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aoer.api.auth import TokenService
from aoer.db.schema import migrate
from aoer.store.keys import new_key
from api_bench import (
    SECRET,
    SERVER_URL,
    Result,
    database_url,
    get,
    load,
    serving,
)

DATABASE = "aoer_bench_api"


def seed(tenants: int, orgs: int) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """`tenants` dealerships with summaries, spread evenly over `orgs` organisations."""
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    url = database_url()
    asyncio.run(migrate(url))
    tenant_ids = [uuid.uuid4() for _ in range(tenants)]
    org_ids = [uuid.uuid4() for _ in range(orgs)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO organizations (id, name) SELECT id, 'Bench Group ' || n"
            " FROM unnest(%s::uuid[]) WITH ORDINALITY AS o (id, n)",
            (org_ids,),
        )
        conn.execute(
            "INSERT INTO tenants (id, name, org_id)"
            " SELECT t.id, 'Bench Motors ' || t.n, (%s::uuid[])[1 + (t.n %% %s)]"
            " FROM unnest(%s::uuid[]) WITH ORDINALITY AS t (id, n)",
            (org_ids, orgs, tenant_ids),
        )
        conn.execute(
            "INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk, metrics)"
            " SELECT id, round((20 + random() * 75)::numeric, 2),"
            " round(random()::numeric, 2), '{}'::jsonb FROM unnest(%s::uuid[]) AS t (id)",
            (tenant_ids,),
        )
        conn.execute("VACUUM ANALYZE")
    return tenant_ids, org_ids


def api_key(scope: str, org_id: uuid.UUID | None = None) -> str:
    """A key stored as `aoer keys create` stores it (hash only)."""
    key, prefix, digest = new_key()
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO api_keys (prefix, hash, scope, org_id, created_by)"
            " VALUES (%s, %s, %s, %s, 'bench')",
            (prefix, digest, scope, org_id),
        )
    return key


def timed_get(port: int, path: str, token: str) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/html"},
    )
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        assert response.status == 200, response.status
    return (time.perf_counter() - began) * 1000


def pages(port: int, admin: str, org: str, rounds: int, per_round: int) -> list[str]:
    paths = ["/dashboard/fleet", "/dashboard/fleet/stats"]
    times: dict[tuple[str, str], list[float]] = {}
    for token in (admin, org):  # warm both up
        for path in paths:
            for _ in range(5):
                timed_get(port, path, token)
    for _ in range(rounds):
        for path in paths:
            for who, token in (("admin", admin), ("org", org)):
                for _ in range(per_round):
                    times.setdefault((path, who), []).append(timed_get(port, path, token))
    lines = []
    for path in paths:
        admin_median = statistics.median(times[(path, "admin")])
        org_median = statistics.median(times[(path, "org")])
        for who in ("admin", "org"):
            ms = sorted(times[(path, who)])
            p90 = ms[int(len(ms) * 0.9)]
            lines.append(
                f"| `GET {path}` | {who} | {statistics.median(ms):.1f} | {p90:.1f} | "
                + (f"{org_median / admin_median:.2f}× |" if who == "org" else "1.00× |")
            )
    return lines


def key_vs_jwt(port: int, tenants: list[uuid.UUID], admin: str, key: str, rounds: int,
               seconds: float) -> list[str]:  # fmt: skip
    jwt_rows = Result("1 process", "cached summary, admin JWT")
    key_rows = Result("1 process", "cached summary, admin API key")
    jwt_requests = [get(f"/api/aoer/summary?tenantId={t}", admin) for t in tenants[:1000]]
    key_requests = [get(f"/api/aoer/summary?tenantId={t}", key) for t in tenants[:1000]]
    for _ in range(rounds):
        for result, requests in ((jwt_rows, jwt_requests), (key_rows, key_requests)):
            uvloop.run(load(result, port, requests, seconds))
            rate, p50, p99 = result.rates[-1], result.p50s[-1], result.p99s[-1]
            print(f"  {result.name:<32} {rate:8.0f} req/s p50 {p50:6.2f} ms p99 {p99:6.2f} ms")
    lines = []
    for result in (jwt_rows, key_rows):
        assert set(result.statuses) == {200}, result.statuses
        lines.append(
            f"| {result.name} | {result.rate:,.0f} | {result.p50:.2f} | {result.p99:.2f} | "
            f"{result.rate / jwt_rows.rate:.2f}× |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pages", type=int, default=20, help="requests per page per round")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"seeding {args.tenants} dealerships in {args.orgs} organisations...", flush=True)
    tenants, orgs = seed(args.tenants, args.orgs)
    tokens = TokenService(SECRET)
    admin = tokens.mint("admin")
    org = tokens.mint("org", org_id=orgs[0])
    key = api_key("admin")
    with serving("org-bench", AOER_CACHE_TTL="3600") as port:
        page_lines = pages(port, admin, org, args.rounds, args.pages)
        key_lines = key_vs_jwt(port, tenants, admin, key, args.rounds, args.seconds)
    print(f"\n{args.tenants:,} dealerships in {args.orgs} organisations; {platform.node()}, "
          f"{platform.python_version()}")  # fmt: skip
    print("| page | caller | median ms | p90 ms | org / admin |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(page_lines))
    print("\n| row | req/s | p50 ms | p99 ms | vs JWT |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(key_lines))


if __name__ == "__main__":
    main()
