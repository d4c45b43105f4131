"""Method 1, the floor: one hand-written statement scores every active tenant, upserts all
summaries and inserts all events. It is the physical limit of this work in this PostgreSQL.

The score is written inline (the same expressions as `aoer_compute_scores`, DESIGN §3) so
the planner sees one aggregate over the whole table instead of a function over an id array.

Its plan is not left to chance: since the signals' primary key carries the components
(migration 0017), the planner may read the window from the key in dealer order instead of
scanning the table. That was faster at 100,000 tenants (7.0-7.7 s against 7.7-9.5 s for
the scan) and far slower at 1,000,000: 228.9 s, where the scan took 61.0 s on the same
seeded data before 0017. A floor of the planner's choice alone would flatter the system at
scale, so `fastest_floor` runs both plans, each from the same reset state, and keeps the faster.
"""

import time
from collections.abc import Awaitable, Callable

from aoer.db.pool import Connection, connect

# The two plans the floor is run with: the planner's own, and a sequential scan of the
# signals with a hash aggregate. Only index-only scans are turned off, for this transaction:
# the foreign-key checks of the statement's inserts are planned under the same settings,
# and with plain index scans off too each of them scanned all of `tenants`.
FLOOR_PLANS: dict[str, tuple[str, ...]] = {
    "planner": (),
    "scan": ("SET LOCAL enable_indexonlyscan = off",),
}

FLOOR_SQL = """
WITH w AS (
    SELECT s.dealer_id AS tenant_id,
           count(*)::integer                          AS n,
           round(avg(s.aeo), 2)                       AS avg_aeo,
           round(coalesce(avg(s.geo), 0), 2)          AS avg_geo,
           round(coalesce(avg(s.ugc), 0), 2)          AS avg_ugc,
           round(coalesce(stddev_samp(s.aeo), 0), 2)  AS volatility,
           (current_date - max(s.date))::integer      AS days_since
    FROM aiv_raw_signals s
    WHERE s.date BETWEEN current_date - 30 AND current_date
      AND s.aeo IS NOT NULL
    GROUP BY s.dealer_id
),
scored AS (
    SELECT w.*,
           round((w.avg_aeo * 0.40 + w.avg_geo * 0.35 + w.avg_ugc * 0.25)
                 * (1 - least(w.volatility / 20, 0.30)), 2) AS score,
           CASE WHEN w.n < 5 THEN 0.80
                WHEN w.days_since > 7 THEN 0.60
                WHEN w.volatility > 15 THEN 0.40
                ELSE 0.20 END AS risk
    FROM w
),
computed AS (
    SELECT t.id AS tenant_id,
           coalesce(sc.score, 0.00) AS aoer_score,
           coalesce(sc.risk, 1.00) AS visibility_risk,
           CASE WHEN sc.n IS NULL THEN '{"error": "No data available"}'::jsonb
                ELSE jsonb_build_object(
                    'avgAEO', sc.avg_aeo,
                    'avgGEO', sc.avg_geo,
                    'avgUGC', sc.avg_ugc,
                    'volatility', sc.volatility,
                    'dataPoints', sc.n,
                    'daysSinceLastData', sc.days_since,
                    'grade', aoer_grade(sc.score),
                    'riskLevel', aoer_risk_level(sc.risk),
                    'modelVersion', 'v1')
           END AS metrics
    FROM tenants t
    LEFT JOIN scored sc ON sc.tenant_id = t.id
    WHERE t.active
),
stored AS (
    INSERT INTO aoer_summary AS s (tenant_id, aoer_score, visibility_risk, metrics,
                                   last_updated)
    SELECT tenant_id, aoer_score, visibility_risk, metrics, now() FROM computed
    ON CONFLICT (tenant_id) DO UPDATE
       SET aoer_score = EXCLUDED.aoer_score,
           visibility_risk = EXCLUDED.visibility_risk,
           metrics = EXCLUDED.metrics,
           last_updated = EXCLUDED.last_updated,
           updated_at = now()
    RETURNING s.tenant_id, s.aoer_score, s.visibility_risk, s.metrics
)
INSERT INTO metrics_events (tenant_id, event_type, event_data)
SELECT tenant_id, 'aoer_recompute',
       jsonb_build_object('priority', 'low',
                          'aoerScore', aoer_score,
                          'visibilityRisk', visibility_risk,
                          'metrics', metrics,
                          'workerId', 'floor')
FROM stored
"""


async def run_floor(conn: Connection, plan: str = "planner") -> int:
    """Run the floor statement in one transaction; returns the number of events written."""
    async with conn.transaction():
        for setting in FLOOR_PLANS[plan]:
            await conn.execute(setting)
        cur = await conn.execute(FLOOR_SQL)
        return cur.rowcount


async def fastest_floor(
    url: str, reset: Callable[[str], Awaitable[None]]
) -> tuple[float, str, int]:
    """Run the floor with each plan of FLOOR_PLANS, each after `reset(url)`; the faster run's
    seconds, its plan and its number of events (the last run's summaries stay)."""
    runs: list[tuple[float, str, int]] = []
    for plan in FLOOR_PLANS:
        await reset(url)
        conn = await connect(url)
        try:
            started = time.perf_counter()
            events = await run_floor(conn, plan)
            runs.append((time.perf_counter() - started, plan, events))
        finally:
            await conn.close()
    return min(runs)


async def explain_floor(conn: Connection) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the floor, rolled back so nothing stays written."""
    lines: list[str] = []
    try:
        async with conn.transaction():
            cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + FLOOR_SQL)
            lines = [str(next(iter(r.values()))) for r in await cur.fetchall()]
            raise _Rollback
    except _Rollback:
        pass
    return "\n".join(lines)


class _Rollback(Exception):
    """Leaves the EXPLAIN ANALYZE transaction without committing its writes."""
