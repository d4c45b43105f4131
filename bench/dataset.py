"""Generate the benchmark fleet in SQL: N dealerships x 60 days of varied, realistic signals.

Every tenant gets a profile (level, trend, noise, gaps) drawn once, then one row a day.
The mix exercises every branch of the score: steady tenants (risk 0.20), noisy ones
(volatility > 15 → 0.40), stale ones (last data > 7 days ago → 0.60), sparse ones (fewer
than 5 points → 0.80) and a few with nothing in the 30-day window (0.00 / 1.00).
"""

from aoer.db.pool import Connection

DAYS = 60
SEED = 0.42

CREATE_RESULTS = """
CREATE TABLE IF NOT EXISTS bench_results (
    method           text NOT NULL,
    tenant_id        uuid NOT NULL,
    aoer_score       text NOT NULL,
    visibility_risk  text NOT NULL,
    metrics          text NOT NULL,
    PRIMARY KEY (method, tenant_id)
)"""

TENANTS = """
INSERT INTO tenants (id, name, domain, city, region)
SELECT md5('aoer-bench-tenant-' || i)::uuid,
       'Bench Motors #' || i,
       'bench-' || i || '.example.com',
       (ARRAY['Austin', 'Denver', 'Tampa', 'Fresno', 'Omaha', 'Boise', 'Akron'])[1 + i %% 7],
       (ARRAY['TX', 'CO', 'FL', 'CA', 'NE', 'ID', 'OH'])[1 + i %% 7]
FROM generate_series(1, %(tenants)s) AS i
"""

# The profile of each tenant, then one row per (tenant, day) it reported. `kind` picks the
# shape: 0-79 steady, 80-91 noisy, 92-96 stale, 97-98 sparse, 99 silent for 35+ days.
SIGNALS = """
WITH profile AS MATERIALIZED (
    SELECT md5('aoer-bench-tenant-' || i)::uuid AS dealer_id,
           (i::bigint * 7919) %% 100                    AS kind,
           15 + random() * 75                   AS level,
           (random() - 0.5) * 0.6               AS trend,
           CASE WHEN (i::bigint * 7919) %% 100 BETWEEN 80 AND 91 THEN 25 + random() * 30
                ELSE 1 + random() * 12 END      AS noise,
           random() * 0.08                      AS gap_rate
    FROM generate_series(1, %(tenants)s) AS i
),
days AS (
    SELECT p.*, d AS days_ago,
           CASE WHEN p.kind BETWEEN 92 AND 96 THEN 8 + (p.level::int %% 20)
                WHEN p.kind = 99 THEN 35
                ELSE 0 END AS first_day_ago
    FROM profile p
    CROSS JOIN generate_series(0, %(days)s - 1) AS d
),
kept AS (
    SELECT * FROM days
    WHERE days_ago >= first_day_ago
      AND (kind NOT IN (97, 98) OR days_ago %% 9 = 0 OR days_ago > 30)
)
INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal,
                             observed_aiv, observed_rar)
SELECT dealer_id,
       current_date - days_ago,
       round(least(100, greatest(0, level + 5 + (random() - 0.5) * noise))::numeric, 2),
       CASE WHEN random() < gap_rate THEN NULL ELSE
           round(least(100, greatest(0, level - trend * days_ago
                                        + (random() - 0.5) * 2 * noise))::numeric, 2) END,
       CASE WHEN random() < gap_rate * 2 THEN NULL ELSE
           round(least(100, greatest(0, level * 0.9 + (random() - 0.5) * noise))::numeric, 2)
       END,
       CASE WHEN random() < gap_rate * 2 THEN NULL ELSE
           round(least(100, greatest(0, level * 0.8 + 10 + (random() - 0.5) * noise))::numeric,
                 2) END,
       round(least(100, greatest(0, level * 0.7 + (random() - 0.5) * noise))::numeric, 2),
       round(least(100, greatest(0, level * 0.85 + (random() - 0.5) * 8))::numeric, 2),
       round((level * 12 + random() * 400)::numeric, 2)
FROM kept
"""


async def generate(conn: Connection, tenants: int) -> int:
    """Insert the fleet and its signals; returns the number of signal rows."""
    await conn.execute(CREATE_RESULTS)
    async with conn.transaction():
        await conn.execute("SELECT setseed(%s)", (SEED,))
        # Generated rows reference tenants inserted just before; skipping the per-row
        # foreign-key trigger (superuser, this session only) makes the load several times
        # faster. CHECK constraints and the primary key still apply.
        cur = await conn.execute("SELECT current_setting('is_superuser') = 'on' AS su")
        row = await cur.fetchone()
        if row and row["su"]:
            await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("SET LOCAL work_mem = '256MB'")
        await conn.execute(TENANTS, {"tenants": tenants})
        cur = await conn.execute(SIGNALS, {"tenants": tenants, "days": DAYS})
        rows = cur.rowcount
    await conn.execute("VACUUM (FREEZE, ANALYZE) tenants, aiv_raw_signals")
    return rows
