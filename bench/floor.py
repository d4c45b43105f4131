"""Method 1, the floor: one hand-written statement scores every active tenant, upserts all
summaries and inserts all events. It is the physical limit of this work in this PostgreSQL.

The score is written inline (the same expressions as `aoer_compute_scores`, DESIGN §3) so
the planner sees one aggregate over the whole table instead of a function over an id array.
"""

from aoer.db.pool import Connection

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


async def run_floor(conn: Connection) -> int:
    """Run the floor statement in one transaction; returns the number of events written."""
    async with conn.transaction():
        cur = await conn.execute(FLOOR_SQL)
        return cur.rowcount


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
