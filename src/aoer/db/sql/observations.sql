-- name: observation_ingest_memory
-- A million staged rows are grouped and hashed several times: in memory, not spilled to disk.
SET LOCAL work_mem = '64MB';

-- name: create_observation_stage
-- A per-transaction staging table for COPY; `line` maps rows back to the caller's input.
CREATE TEMPORARY TABLE aoer_observation_stage (
    line         integer NOT NULL,
    dealer_id    uuid NOT NULL,
    date         date NOT NULL,
    engine       text COLLATE "C" NOT NULL,
    prompt       text COLLATE "C" NOT NULL,
    mentioned    boolean NOT NULL,
    position     integer,
    cited        boolean NOT NULL,
    cited_urls   text[] NOT NULL,
    competitors  text[] NOT NULL,
    sentiment    numeric(3,2)
) ON COMMIT DROP;

-- name: create_observation_keys
-- Every staged row's key, chunk after chunk: rows repeating a row of an earlier chunk.
CREATE TEMPORARY TABLE aoer_observation_keys (
    line       integer NOT NULL,
    dealer_id  uuid NOT NULL,
    date       date NOT NULL,
    engine     text COLLATE "C" NOT NULL,
    prompt     text COLLATE "C" NOT NULL
) ON COMMIT DROP;

-- name: create_fresh_stage_days
CREATE TEMPORARY TABLE aoer_observation_fresh_days (
    dealer_id  uuid NOT NULL,
    date       date NOT NULL
) ON COMMIT DROP;

-- name: create_staged_days
-- The days of every chunk merged: their rollups and derived signals are rebuilt once, at the end.
CREATE TEMPORARY TABLE aoer_observation_staged_days (
    dealer_id  uuid NOT NULL,
    date       date NOT NULL,
    PRIMARY KEY (dealer_id, date)
) ON COMMIT DROP;

-- name: keep_staged_days
INSERT INTO aoer_observation_staged_days (dealer_id, date)
SELECT DISTINCT dealer_id, date FROM aoer_observation_stage
ON CONFLICT DO NOTHING;

-- name: keep_stage_keys
INSERT INTO aoer_observation_keys (line, dealer_id, date, engine, prompt)
SELECT line, dealer_id, date, engine, prompt FROM aoer_observation_stage;

-- name: clear_observation_stage
TRUNCATE aoer_observation_stage;

-- name: observation_key_duplicates
-- Rows repeating an earlier row's dealer, day, engine and prompt, with the line of the first,
-- over every chunk staged (a hash aggregate finds the repeated keys in one pass).
WITH repeated AS (
    SELECT dealer_id, date, engine, prompt, min(line) AS first_line
    FROM aoer_observation_keys
    GROUP BY dealer_id, date, engine, prompt
    HAVING count(*) > 1
)
SELECT k.line, 'duplicate' AS kind, k.dealer_id, r.first_line
FROM repeated r
JOIN aoer_observation_keys k
  ON k.dealer_id = r.dealer_id AND k.date = r.date AND k.engine = r.engine
 AND k.prompt = r.prompt AND k.line <> r.first_line
ORDER BY k.line
LIMIT %(limit)s;

-- name: copy_observation_stage
COPY aoer_observation_stage (line, dealer_id, date, engine, prompt, mentioned, position, cited,
                             cited_urls, competitors, sentiment) FROM STDIN;

-- name: observation_stage_problems
-- The staged chunk's rows naming no tenant (`unknown`), and rows repeating an earlier row of
-- the chunk (`duplicate`, with the line of the first): merging it would fail on either.
-- Set-based: a hash aggregate finds the repeated keys in one pass without a sort.
WITH unknown AS (
    SELECT s.line, 'unknown' AS kind, s.dealer_id, NULL::integer AS first_line
    FROM aoer_observation_stage s
    WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.dealer_id)
),
repeated AS (
    SELECT dealer_id, date, engine, prompt, min(line) AS first_line
    FROM aoer_observation_stage
    GROUP BY dealer_id, date, engine, prompt
    HAVING count(*) > 1
)
SELECT line, kind, dealer_id, first_line FROM unknown
UNION ALL
SELECT s.line, 'duplicate', s.dealer_id, r.first_line
FROM repeated r
JOIN aoer_observation_stage s
  ON s.dealer_id = r.dealer_id AND s.date = r.date AND s.engine = r.engine
 AND s.prompt = r.prompt AND s.line <> r.first_line
ORDER BY line
LIMIT %(limit)s;

-- name: clear_fresh_stage_days
TRUNCATE aoer_observation_fresh_days;

-- name: find_fresh_stage_days
-- The staged days that hold no observation yet. Taken under the staged tenants' ingest lock,
-- so none can gain one before this transaction commits: their rows are inserted plainly,
-- without ON CONFLICT's speculative insertion (an eighth of a million-row merge's cost).
INSERT INTO aoer_observation_fresh_days (dealer_id, date)
SELECT d.dealer_id, d.date
FROM (SELECT DISTINCT dealer_id, date FROM aoer_observation_stage) d
WHERE NOT EXISTS (
    SELECT 1 FROM answer_observations o WHERE o.dealer_id = d.dealer_id AND o.date = d.date
);

-- name: insert_fresh_observations
INSERT INTO answer_observations (dealer_id, date, engine, prompt, mentioned, position, cited,
                                 cited_urls, competitors, sentiment)
SELECT s.dealer_id, s.date, s.engine, s.prompt, s.mentioned, s.position, s.cited,
       s.cited_urls, s.competitors, s.sentiment
FROM aoer_observation_stage s
JOIN aoer_observation_fresh_days f ON f.dealer_id = s.dealer_id AND f.date = s.date;

-- name: merge_observation_stage
-- The other staged rows: re-sending a (dealer, day, engine, prompt) replaces the observation
-- (the caller reads the row count: inserted and replaced rows).
INSERT INTO answer_observations AS o (dealer_id, date, engine, prompt, mentioned, position,
                                      cited, cited_urls, competitors, sentiment)
SELECT s.dealer_id, s.date, s.engine, s.prompt, s.mentioned, s.position, s.cited,
       s.cited_urls, s.competitors, s.sentiment
FROM aoer_observation_stage s
WHERE NOT EXISTS (
    SELECT 1 FROM aoer_observation_fresh_days f
    WHERE f.dealer_id = s.dealer_id AND f.date = s.date
)
ON CONFLICT (dealer_id, date, engine, prompt) DO UPDATE
   SET mentioned = EXCLUDED.mentioned, position = EXCLUDED.position,
       cited = EXCLUDED.cited, cited_urls = EXCLUDED.cited_urls,
       competitors = EXCLUDED.competitors, sentiment = EXCLUDED.sentiment,
       created_at = now();

-- name: staged_observation_tenants
SELECT DISTINCT dealer_id FROM aoer_observation_staged_days ORDER BY dealer_id;

-- name: derive_signals_from_stage
-- Each merged (dealer, day): aeo = round(100 × visibility, 2) and geo = round(100 ×
-- citationRate, 2) over all of that day's observations (every engine; DESIGN §14). A value
-- supplied directly (not NULL, `_derived` false) is kept; a derived or missing one is
-- (re)placed. Returns the dealers whose signal rows were written: a day whose values were
-- all supplied, or whose derived ones come out the same, is left alone (nothing to recompute).
WITH rates AS (
    SELECT o.dealer_id, o.date,
           round(100 * count(*) FILTER (WHERE o.mentioned)::numeric / count(*), 2) AS aeo,
           round(100 * count(*) FILTER (WHERE o.cited)::numeric / count(*), 2) AS geo
    FROM answer_observations o
    JOIN aoer_observation_staged_days d ON d.dealer_id = o.dealer_id AND d.date = o.date
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
       WHERE ((r.aeo IS NULL OR r.aeo_derived) AND r.aeo IS DISTINCT FROM EXCLUDED.aeo)
          OR ((r.geo IS NULL OR r.geo_derived) AND r.geo IS DISTINCT FROM EXCLUDED.geo)
    RETURNING r.dealer_id
)
SELECT DISTINCT dealer_id FROM derived ORDER BY dealer_id;

-- name: lock_staged_tenants
-- Serialise ingests per tenant until commit (advisory lock class 15, sorted to avoid
-- deadlocks): a day's rollups and derived signals are recomputed from all of its committed
-- observations, so two concurrent ingests of one tenant must not both miss the other's rows.
SELECT count(pg_advisory_xact_lock(15, hashtext(s.dealer_id::text)))::integer AS locked
FROM (SELECT DISTINCT dealer_id FROM aoer_observation_stage ORDER BY dealer_id) s;

-- name: refresh_observation_days
-- The staged days' per-engine rollup, from every observation of those days. A (dealer, day,
-- engine) group never disappears (re-sending replaces within it), so an upsert suffices.
INSERT INTO answer_observation_days AS r (dealer_id, date, engine, answers, mentions, cited,
                                          rival_mentions, positions, position_sum,
                                          sentiments, sentiment_sum)
SELECT o.dealer_id, o.date, o.engine,
       count(*),
       count(*) FILTER (WHERE o.mentioned),
       count(*) FILTER (WHERE o.cited),
       -- distinct names per answer, whatever their case (the leaderboard merges spellings);
       -- most answers name fewer than two (no subquery then)
       coalesce(sum(CASE WHEN cardinality(o.competitors) < 2 THEN cardinality(o.competitors)
                         ELSE (SELECT count(DISTINCT lower(c)) FROM unnest(o.competitors) AS c)
                    END), 0),
       count(*) FILTER (WHERE o.mentioned AND o.position IS NOT NULL),
       coalesce(sum(o.position) FILTER (WHERE o.mentioned), 0),
       count(o.sentiment),
       coalesce(sum(o.sentiment), 0)
FROM answer_observations o
JOIN aoer_observation_staged_days d ON d.dealer_id = o.dealer_id AND d.date = o.date
GROUP BY o.dealer_id, o.date, o.engine
ON CONFLICT (dealer_id, date, engine) DO UPDATE
   SET answers = EXCLUDED.answers, mentions = EXCLUDED.mentions, cited = EXCLUDED.cited,
       rival_mentions = EXCLUDED.rival_mentions, positions = EXCLUDED.positions,
       position_sum = EXCLUDED.position_sum, sentiments = EXCLUDED.sentiments,
       sentiment_sum = EXCLUDED.sentiment_sum;

-- name: clear_competitor_days
-- A re-sent answer may name a competitor no more: the staged days are rebuilt, not merged.
DELETE FROM answer_competitor_days r
USING aoer_observation_staged_days d
WHERE r.dealer_id = d.dealer_id AND r.date = d.date;

-- name: fill_competitor_days
-- Answers naming each competitor: a name counts at its first place in an answer's list (a
-- name listed twice in one answer, in any case, counts once), so no per-answer DISTINCT is
-- needed.
INSERT INTO answer_competitor_days (dealer_id, date, name, mentions)
SELECT o.dealer_id, o.date, c.name, count(*)
FROM answer_observations o
JOIN aoer_observation_staged_days d ON d.dealer_id = o.dealer_id AND d.date = o.date
CROSS JOIN LATERAL unnest(o.competitors) WITH ORDINALITY AS c (name, i)
WHERE c.i = 1
   OR lower(c.name) <> ALL (SELECT lower(e) FROM unnest(o.competitors[:c.i - 1]) AS e)
GROUP BY o.dealer_id, o.date, c.name;

-- name: clear_cited_url_days
DELETE FROM answer_cited_url_days r
USING aoer_observation_staged_days d
WHERE r.dealer_id = d.dealer_id AND r.date = d.date;

-- name: fill_cited_url_days
-- Answers citing each page (a URL listed twice in one answer counts once, as above).
INSERT INTO answer_cited_url_days (dealer_id, date, url, answers)
SELECT o.dealer_id, o.date, u.url, count(*)
FROM answer_observations o
JOIN aoer_observation_staged_days d ON d.dealer_id = o.dealer_id AND d.date = o.date
CROSS JOIN LATERAL unnest(o.cited_urls) WITH ORDINALITY AS u (url, i)
WHERE u.i = 1 OR u.url <> ALL (o.cited_urls[:u.i - 1])
GROUP BY o.dealer_id, o.date, u.url;

-- name: engine_window
-- The §14 metrics over the §3 window (CURRENT_DATE - 30 … CURRENT_DATE) per engine, and
-- overall (the row whose engine is NULL; always present, with 0 answers when there are none),
-- from the daily rollups: sums of exact counts, divided and rounded once in numeric.
WITH d AS (
    SELECT *
    FROM answer_observation_days r
    WHERE r.dealer_id = %(tenant_id)s
      AND r.date BETWEEN current_date - 30 AND current_date
)
SELECT engine,
       current_date - 30 AS window_from,
       current_date AS window_to,
       coalesce(sum(answers), 0)::integer AS answers,
       round(sum(mentions)::numeric / nullif(sum(answers), 0), 4) AS visibility,
       round(sum(cited)::numeric / nullif(sum(answers), 0), 4) AS citation_rate,
       round(sum(position_sum)::numeric / nullif(sum(positions), 0), 2) AS avg_position,
       round(sum(mentions)::numeric / nullif(sum(mentions) + sum(rival_mentions), 0), 4)
           AS share_of_voice,
       round(sum(sentiment_sum) / nullif(sum(sentiments), 0), 2) AS sentiment
FROM d
GROUP BY GROUPING SETS ((engine), ())
ORDER BY engine COLLATE "C" NULLS FIRST;

-- name: competitor_window
-- The competitor leaderboard over the window: answers naming each competitor (once per
-- answer), and its share of voice = its mentions / (own mentions + all competitor mentions).
-- Most mentioned first, ties by name (byte order, so the order never depends on a locale).
-- Names differing only in case are one competitor ("CarMax", "carmax" from two feeds), shown
-- as its most mentioned spelling.
WITH spelled AS (
    SELECT c.name, sum(c.mentions) AS mentions
    FROM answer_competitor_days c
    WHERE c.dealer_id = %(tenant_id)s
      AND c.date BETWEEN current_date - 30 AND current_date
    GROUP BY c.name
),
named AS (
    SELECT (array_agg(s.name ORDER BY s.mentions DESC, s.name COLLATE "C"))[1] AS name,
           sum(s.mentions) AS mentions
    FROM spelled s
    GROUP BY lower(s.name)
),
voices AS (
    SELECT coalesce(sum(r.mentions + r.rival_mentions), 0) AS total
    FROM answer_observation_days r
    WHERE r.dealer_id = %(tenant_id)s
      AND r.date BETWEEN current_date - 30 AND current_date
)
SELECT n.name, n.mentions::integer AS mentions,
       round(n.mentions::numeric / nullif(v.total, 0), 4) AS share_of_voice
FROM named n CROSS JOIN voices v
ORDER BY n.mentions DESC, n.name COLLATE "C"
LIMIT %(limit)s;

-- name: cited_url_window
-- The dealership's most cited pages over the window: answers citing each URL (once per
-- answer), most first, ties by URL (byte order).
SELECT u.url, sum(u.answers)::integer AS count
FROM answer_cited_url_days u
WHERE u.dealer_id = %(tenant_id)s
  AND u.date BETWEEN current_date - 30 AND current_date
GROUP BY u.url
ORDER BY count DESC, u.url COLLATE "C"
LIMIT %(limit)s;

-- name: share_of_voice_of_tenants
-- The overall share of voice of each of these tenants over the window (the fleet's column).
SELECT r.dealer_id AS tenant_id,
       round(sum(r.mentions)::numeric / nullif(sum(r.mentions) + sum(r.rival_mentions), 0), 4)
           AS share_of_voice
FROM answer_observation_days r
WHERE r.dealer_id = ANY (%(tenant_ids)s)
  AND r.date BETWEEN current_date - 30 AND current_date
GROUP BY r.dealer_id;

-- name: tenants_with_observations
-- One index probe a tenant, stopping at its first observation (not every row of theirs).
SELECT t.id AS dealer_id
FROM unnest(%(ids)s::uuid[]) AS t(id)
WHERE EXISTS (SELECT 1 FROM answer_observations o WHERE o.dealer_id = t.id);
