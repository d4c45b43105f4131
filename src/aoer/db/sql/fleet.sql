-- name: fleet_page
-- One page of the fleet: every dealership (computed or not) with its summary, filtered by a
-- name fragment, grade and risk level, ordered by the chosen key. The sort key is a fixed
-- word chosen by the caller from a whitelist; each CASE below is NULL unless selected, so it
-- orders nothing. Never-computed dealerships, and by score or risk those with no data, sort
-- last in both directions (by the 7-day change, so do those without one); ties by name, id.
-- The 7-day change costs one index probe of each matching dealership's events, so the
-- dashboard offers that order only up to FLEET_CHANGE_SORT_MAX matching dealerships.
-- The inner query orders only ids (a top-N sort); the page's rows are then read by key, and
-- grade, level and the 7-day change (what GET /api/aoer/summary calls change7d: the same
-- function, so the page and the API agree) computed for those rows alone.
SELECT t.id AS tenant_id, t.name, t.city, t.active,
       s.aoer_score, s.visibility_risk, s.last_updated,
       aoer_grade(s.aoer_score, s.metrics) AS grade,
       aoer_risk_level(s.visibility_risk, s.metrics) AS risk_level,
       context.change_7d
FROM unnest(ARRAY(
    SELECT t.id
    FROM tenants t
    LEFT JOIN aoer_summary s ON s.tenant_id = t.id
    -- Read only when sorting by it (the ON clause is false otherwise).
    LEFT JOIN LATERAL aoer_change_over(t.id, s.aoer_score, s.metrics, %(event_type)s, 7) week
           ON %(sort)s = 'change7d'
    WHERE (%(name)s::text IS NULL OR strpos(lower(t.name), lower(%(name)s::text)) > 0)
      AND (%(org_id)s::uuid IS NULL OR t.org_id = %(org_id)s::uuid)
      AND (%(grade)s::text IS NULL
           OR (%(grade)s = 'none' AND s.tenant_id IS NULL)
           OR aoer_grade(s.aoer_score, s.metrics) = %(grade)s)
      AND (%(risk_level)s::text IS NULL
           OR aoer_risk_level(s.visibility_risk, s.metrics) = %(risk_level)s)
    ORDER BY
        CASE WHEN %(sort)s = 'score' AND NOT %(descending)s
                  AND aoer_has_data(s.metrics) THEN s.aoer_score END
            ASC NULLS LAST,
        CASE WHEN %(sort)s = 'score' AND %(descending)s
                  AND aoer_has_data(s.metrics) THEN s.aoer_score END DESC NULLS LAST,
        CASE WHEN %(sort)s = 'risk' AND NOT %(descending)s
                  AND aoer_has_data(s.metrics) THEN s.visibility_risk END
            ASC NULLS LAST,
        CASE WHEN %(sort)s = 'risk' AND %(descending)s
                  AND aoer_has_data(s.metrics) THEN s.visibility_risk END
            DESC NULLS LAST,
        CASE WHEN %(sort)s = 'change7d' AND NOT %(descending)s THEN week.change END
            ASC NULLS LAST,
        CASE WHEN %(sort)s = 'change7d' AND %(descending)s THEN week.change END
            DESC NULLS LAST,
        CASE WHEN %(sort)s = 'updated' AND NOT %(descending)s THEN s.last_updated END
            ASC NULLS LAST,
        CASE WHEN %(sort)s = 'updated' AND %(descending)s THEN s.last_updated END
            DESC NULLS LAST,
        CASE WHEN %(sort)s = 'name' AND %(descending)s THEN lower(t.name) END DESC,
        lower(t.name), t.id
    LIMIT %(limit)s OFFSET %(offset)s
)) WITH ORDINALITY AS page (tenant_id, position)
JOIN tenants t ON t.id = page.tenant_id
LEFT JOIN aoer_summary s ON s.tenant_id = page.tenant_id
LEFT JOIN LATERAL aoer_summary_context(t.id, t.org_id, s.aoer_score, s.metrics,
                                       %(event_type)s, %(min_peers)s) context
       ON s.tenant_id IS NOT NULL
ORDER BY page.position;

-- name: fleet_without_jit
-- For the rest of this transaction: no JIT compilation. Sorting by the 7-day change probes
-- every matching dealership's events, which the planner costs far above jit_above_cost:
-- compiling took ~450 ms of a 600 ms sort of 20,000 dealerships, which takes 150 ms without.
SELECT set_config('jit', 'off', true);

-- name: fleet_count
-- How many dealerships match the fleet filters (for the pager).
SELECT count(*)::integer AS matching
FROM tenants t
LEFT JOIN aoer_summary s ON s.tenant_id = t.id
WHERE (%(name)s::text IS NULL OR strpos(lower(t.name), lower(%(name)s::text)) > 0)
  AND (%(org_id)s::uuid IS NULL OR t.org_id = %(org_id)s::uuid)
  AND (%(grade)s::text IS NULL
       OR (%(grade)s = 'none' AND s.tenant_id IS NULL)
       OR aoer_grade(s.aoer_score, s.metrics) = %(grade)s)
  AND (%(risk_level)s::text IS NULL
       OR aoer_risk_level(s.visibility_risk, s.metrics) = %(risk_level)s);

-- name: fleet_totals
-- The fleet at a glance: dealerships, how many are inactive, and of the active ones how many
-- were computed, how many of those had no data (score 0.00 and risk 1.00 stored, DESIGN §3),
-- the mean score of those with data, and how many sit at each risk level ("No data" apart);
-- `org_id`: over that organisation's dealerships alone. An inactive dealership is left out
-- of all but the count: its score is frozen where it was made inactive (as the peers'
-- medians leave it out). Risks take at most 101 values (numeric(3,2) in 0..1), so the level
-- is computed once per distinct value, not once per dealership.
WITH scoped AS (
    SELECT s.aoer_score, s.visibility_risk, aoer_has_data(s.metrics) AS has_data
    FROM aoer_summary s
    JOIN tenants t ON t.id = s.tenant_id
    WHERE t.active AND (%(org_id)s::uuid IS NULL OR t.org_id = %(org_id)s::uuid)
),
by_risk AS (
    SELECT aoer_risk_level(visibility_risk) AS level, dealers
    FROM (SELECT visibility_risk, count(*) AS dealers
          FROM scoped
          WHERE has_data
          GROUP BY visibility_risk) r
)
SELECT (SELECT count(*) FROM tenants t
        WHERE %(org_id)s::uuid IS NULL OR t.org_id = %(org_id)s::uuid)::integer AS tenants,
       (SELECT count(*) FROM tenants t
        WHERE NOT t.active
          AND (%(org_id)s::uuid IS NULL OR t.org_id = %(org_id)s::uuid))::integer AS inactive,
       (SELECT count(*) FROM scoped)::integer AS computed,
       (SELECT count(*) FROM scoped WHERE NOT has_data)::integer AS no_data,
       (SELECT round(avg(aoer_score), 2) FROM scoped WHERE has_data) AS mean_score,
       coalesce(sum(dealers) FILTER (WHERE level = 'Low'), 0)::integer AS low,
       coalesce(sum(dealers) FILTER (WHERE level = 'Medium'), 0)::integer AS medium,
       coalesce(sum(dealers) FILTER (WHERE level = 'High'), 0)::integer AS high,
       coalesce(sum(dealers) FILTER (WHERE level = 'Critical'), 0)::integer AS critical
FROM by_risk;

-- name: recent_failures
-- The latest failed attempts across the fleet, newest first, with the dealership's name.
SELECT f.created_at, f.tenant_id, t.name, f.error_message, f.retry_count,
       coalesce((f.error_data ->> 'willRetry')::boolean, false) AS will_retry
FROM aoer_failures f
JOIN tenants t ON t.id = f.tenant_id
ORDER BY f.created_at DESC
LIMIT %(limit)s;

-- name: tenant_view
-- One dealership with its summary (NULL columns when never computed) and how many signal
-- rows it has sent, and when the latest one is dated.
SELECT t.id AS tenant_id, t.name, t.domain, t.city, t.region, t.active,
       s.aoer_score, s.visibility_risk, s.last_updated, coalesce(s.metrics, '{}') AS metrics,
       aoer_grade(s.aoer_score, s.metrics) AS grade,
       aoer_risk_level(s.visibility_risk, s.metrics) AS risk_level,
       sig.signal_rows, sig.last_signal_date
FROM tenants t
LEFT JOIN aoer_summary s ON s.tenant_id = t.id
CROSS JOIN LATERAL (
    SELECT count(*)::integer AS signal_rows, max(r.date) AS last_signal_date
    FROM aiv_raw_signals r
    WHERE r.dealer_id = t.id
) sig
WHERE t.id = %(tenant_id)s;
