-- name: create_observation_stage
-- A per-transaction staging table for COPY; `line` maps rows back to the caller's input.
CREATE TEMPORARY TABLE aoer_observation_stage (
    line         integer NOT NULL,
    dealer_id    uuid NOT NULL,
    date         date NOT NULL,
    engine       text NOT NULL,
    prompt       text NOT NULL,
    mentioned    boolean NOT NULL,
    position     integer,
    cited        boolean NOT NULL,
    cited_urls   text[] NOT NULL,
    competitors  text[] NOT NULL,
    sentiment    numeric(3,2)
) ON COMMIT DROP;

-- name: copy_observation_stage
COPY aoer_observation_stage (line, dealer_id, date, engine, prompt, mentioned, position, cited,
                             cited_urls, competitors, sentiment) FROM STDIN;

-- name: observation_stage_problems
-- Rows naming no tenant (`unknown`), and rows repeating an earlier row's dealer, day, engine
-- and prompt (`duplicate`, with the line of the first). Set-based, so a million staged rows
-- are checked in one pass.
WITH unknown AS (
    SELECT s.line, 'unknown' AS kind, s.dealer_id, NULL::integer AS first_line
    FROM aoer_observation_stage s
    WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.dealer_id)
),
ranked AS (
    SELECT s.line, s.dealer_id,
           min(s.line) OVER (PARTITION BY s.dealer_id, s.date, s.engine, s.prompt) AS first_line
    FROM aoer_observation_stage s
)
SELECT line, kind, dealer_id, first_line FROM unknown
UNION ALL
SELECT line, 'duplicate', dealer_id, first_line FROM ranked WHERE line <> first_line
ORDER BY line
LIMIT %(limit)s;

-- name: merge_observation_stage
-- Re-sending a (dealer, day, engine, prompt) replaces the observation.
WITH merged AS (
    INSERT INTO answer_observations AS o (dealer_id, date, engine, prompt, mentioned, position,
                                          cited, cited_urls, competitors, sentiment)
    SELECT dealer_id, date, engine, prompt, mentioned, position, cited, cited_urls,
           competitors, sentiment
    FROM aoer_observation_stage
    ON CONFLICT (dealer_id, date, engine, prompt) DO UPDATE
       SET mentioned = EXCLUDED.mentioned, position = EXCLUDED.position,
           cited = EXCLUDED.cited, cited_urls = EXCLUDED.cited_urls,
           competitors = EXCLUDED.competitors, sentiment = EXCLUDED.sentiment,
           created_at = now()
    RETURNING 1
)
SELECT count(*)::integer AS upserted FROM merged;

-- name: staged_observation_tenants
SELECT DISTINCT dealer_id FROM aoer_observation_stage ORDER BY dealer_id;

-- name: derive_signals_from_stage
-- Each staged (dealer, day): aeo = round(100 × visibility, 2) and geo = round(100 ×
-- citationRate, 2) over all of that day's observations (every engine; DESIGN §14). A value
-- supplied directly (not NULL, `_derived` false) is kept; a derived or missing one is
-- (re)placed. Returns the dealers whose signal rows were written.
WITH days AS (
    SELECT DISTINCT dealer_id, date FROM aoer_observation_stage
),
rates AS (
    SELECT o.dealer_id, o.date,
           round(100 * count(*) FILTER (WHERE o.mentioned)::numeric / count(*), 2) AS aeo,
           round(100 * count(*) FILTER (WHERE o.cited)::numeric / count(*), 2) AS geo
    FROM answer_observations o
    JOIN days d ON d.dealer_id = o.dealer_id AND d.date = o.date
    GROUP BY o.dealer_id, o.date
),
derived AS (
    INSERT INTO aiv_raw_signals AS r (dealer_id, date, aeo, aeo_derived, geo, geo_derived)
    SELECT dealer_id, date, aeo, true, geo, true FROM rates
    ON CONFLICT (dealer_id, date) DO UPDATE
       SET aeo = CASE WHEN r.aeo IS NULL OR r.aeo_derived THEN EXCLUDED.aeo ELSE r.aeo END,
           aeo_derived = r.aeo IS NULL OR r.aeo_derived,
           geo = CASE WHEN r.geo IS NULL OR r.geo_derived THEN EXCLUDED.geo ELSE r.geo END,
           geo_derived = r.geo IS NULL OR r.geo_derived,
           updated_at = now()
    RETURNING r.dealer_id
)
SELECT DISTINCT dealer_id FROM derived ORDER BY dealer_id;

-- name: engine_window
-- The §14 metrics over the §3 window (CURRENT_DATE - 30 … CURRENT_DATE) per engine, and
-- overall (the row whose engine is NULL; always present, with 0 answers when there are none).
-- `rivals` counts the distinct competitors an answer names: one named twice counts once.
WITH w AS (
    SELECT o.engine, o.mentioned, o.cited, o.position, o.sentiment,
           (SELECT count(DISTINCT c) FROM unnest(o.competitors) AS c) AS rivals
    FROM answer_observations o
    WHERE o.dealer_id = %(tenant_id)s
      AND o.date BETWEEN current_date - 30 AND current_date
)
SELECT engine,
       current_date - 30 AS window_from,
       current_date AS window_to,
       count(*)::integer AS answers,
       round(count(*) FILTER (WHERE mentioned)::numeric / nullif(count(*), 0), 4)
           AS visibility,
       round(count(*) FILTER (WHERE cited)::numeric / nullif(count(*), 0), 4) AS citation_rate,
       round(avg(position) FILTER (WHERE mentioned AND position IS NOT NULL), 2)
           AS avg_position,
       round(count(*) FILTER (WHERE mentioned)::numeric
             / nullif(count(*) FILTER (WHERE mentioned) + coalesce(sum(rivals), 0), 0), 4)
           AS share_of_voice,
       round(avg(sentiment), 2) AS sentiment
FROM w
GROUP BY GROUPING SETS ((engine), ())
ORDER BY engine COLLATE "C" NULLS FIRST;

-- name: competitor_window
-- The competitor leaderboard over the window: answers naming each competitor (once per
-- answer), and its share of voice = its mentions / (own mentions + all competitor mentions).
-- Most mentioned first, ties by name (byte order, so the order never depends on a locale).
WITH w AS (
    SELECT o.id, o.mentioned, o.competitors
    FROM answer_observations o
    WHERE o.dealer_id = %(tenant_id)s
      AND o.date BETWEEN current_date - 30 AND current_date
),
named AS (
    SELECT DISTINCT w.id, c.name
    FROM w CROSS JOIN LATERAL unnest(w.competitors) AS c (name)
),
voices AS (
    SELECT (SELECT count(*) FROM w WHERE w.mentioned) + (SELECT count(*) FROM named) AS total
)
SELECT n.name, count(*)::integer AS mentions,
       round(count(*)::numeric / nullif(min(v.total), 0), 4) AS share_of_voice
FROM named n CROSS JOIN voices v
GROUP BY n.name
ORDER BY mentions DESC, n.name COLLATE "C"
LIMIT %(limit)s;

-- name: cited_url_window
-- The dealership's most cited pages over the window: answers citing each URL (once per
-- answer), most first, ties by URL (byte order).
SELECT c.url, count(DISTINCT o.id)::integer AS count
FROM answer_observations o
CROSS JOIN LATERAL unnest(o.cited_urls) AS c (url)
WHERE o.dealer_id = %(tenant_id)s
  AND o.date BETWEEN current_date - 30 AND current_date
GROUP BY c.url
ORDER BY count DESC, c.url COLLATE "C"
LIMIT %(limit)s;
