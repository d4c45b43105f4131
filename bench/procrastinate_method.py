"""Method 4, a general-purpose PostgreSQL job library: Procrastinate, one job per tenant
deferred in bulk, a worker at its best concurrency, the task doing the per-tenant
computation in SQL (the same `aoer_store_scores` function plus the event, one statement).

Run as `python bench/procrastinate_method.py worker DATABASE_URL --concurrency C [--drain]`.
"""

import argparse
import asyncio
import importlib.metadata
import sys
from collections.abc import Sequence

import procrastinate
from procrastinate.types import JSONDict
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

DEFER_CHUNK = 10_000  # jobs per batch_defer_async call

# Score, upsert and event for one tenant: the per-tenant work, done in the database.
RECOMPUTE_SQL = """
WITH stored AS (SELECT * FROM aoer_store_scores(ARRAY[%(tenant_id)s::uuid]))
INSERT INTO metrics_events (tenant_id, event_type, event_data)
SELECT tenant_id, 'aoer_recompute',
       jsonb_build_object('priority', 'low', 'aoerScore', aoer_score,
                          'visibilityRisk', visibility_risk, 'metrics', metrics,
                          'workerId', 'procrastinate')
FROM stored
"""

_pool: AsyncConnectionPool | None = None


def procrastinate_version() -> str:
    return importlib.metadata.version("procrastinate")


def make_app(database_url: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))

    @app.task(name="aoer_recompute")
    async def recompute(tenant_id: str) -> None:
        assert _pool is not None
        async with _pool.connection() as conn:
            await conn.execute(RECOMPUTE_SQL, {"tenant_id": tenant_id})

    return app


async def install_schema(database_url: str) -> None:
    app = make_app(database_url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def defer_all(database_url: str, tenant_ids: Sequence[str]) -> None:
    """One job per tenant, deferred in bulk (batch_defer_async, DEFER_CHUNK at a time)."""
    app = make_app(database_url)
    async with app.open_async():
        task = app.tasks["aoer_recompute"]
        for start in range(0, len(tenant_ids), DEFER_CHUNK):
            chunk = tenant_ids[start : start + DEFER_CHUNK]
            jobs: list[JSONDict] = [{"tenant_id": t} for t in chunk]
            await task.batch_defer_async(*jobs)


async def _utc(conn: AsyncConnection) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


async def work(database_url: str, concurrency: int, *, drain: bool) -> None:
    global _pool
    app = make_app(database_url)
    _pool = AsyncConnectionPool(
        database_url,
        min_size=concurrency,
        max_size=concurrency,
        open=False,
        configure=_utc,
        kwargs={"autocommit": True},
    )
    await _pool.open(wait=True)
    try:
        async with app.open_async():
            await app.run_worker_async(concurrency=concurrency, wait=not drain)
    finally:
        await _pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("database_url")
    worker.add_argument("--concurrency", type=int, default=10)
    worker.add_argument("--drain", action="store_true")
    args = parser.parse_args()
    asyncio.run(work(args.database_url, args.concurrency, drain=args.drain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
