-- Two things a newcomer tripped over (issue 12): duplicate dealership names, and dealerships
-- with no data graded like truly invisible ones.

-- A dealership's name is unique, ignoring case and surrounding blanks ("Summit Ford" =
-- " summit ford "), like an organisation's (0008): a second registration under a taken name
-- is refused (issue 12), and the fleet view never shows two indistinguishable rows.
--
-- Names registered twice before this rule: the oldest keeps its name, each later one gets
-- the first 8 hex digits of its id appended ("Summit Ford (3f2a9c1e)"), so the index can be
-- built and nothing is lost. Rename them with care afterwards.
UPDATE tenants AS t
SET name = t.name || ' (' || left(t.id::text, 8) || ')'
FROM (
    SELECT id, row_number() OVER (PARTITION BY lower(btrim(name)) ORDER BY created_at, id) AS n
    FROM tenants
) AS d
WHERE d.id = t.id AND d.n > 1;

CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(btrim(name)));

-- "No data": a summary computed from no signal row in its 30-day window keeps its stored v1
-- values (score 0.00, risk 1.00, metrics {"error": "No data available"}, DESIGN §3), but its
-- grade and risk level say so instead of "Poor" / "Critical", and fleet means leave it out.
-- These two-argument forms are what the API and the dashboard read; the one-argument ones
-- (and the seed's v_aoer_dashboard built on them) are unchanged. Inlinable like 0004's.
CREATE OR REPLACE FUNCTION aoer_has_data(metrics jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE CALLED ON NULL INPUT AS $$
    SELECT NOT coalesce(metrics ? 'error', false)
$$;

CREATE OR REPLACE FUNCTION aoer_grade(score numeric, metrics jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE CALLED ON NULL INPUT AS $$
    SELECT CASE WHEN score IS NULL THEN NULL
                WHEN metrics ? 'error' THEN 'No data'
                ELSE aoer_grade(score) END
$$;

CREATE OR REPLACE FUNCTION aoer_risk_level(risk numeric, metrics jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE CALLED ON NULL INPUT AS $$
    SELECT CASE WHEN risk IS NULL THEN NULL
                WHEN metrics ? 'error' THEN 'No data'
                ELSE aoer_risk_level(risk) END
$$;
