-- name: create_signal_stage
-- A per-transaction staging table for COPY; `line` maps rows back to the caller's input.
CREATE TEMPORARY TABLE aoer_signal_stage (
    line          integer NOT NULL,
    dealer_id     uuid NOT NULL,
    date          date NOT NULL,
    seo           numeric(5,2),
    aeo           numeric(5,2),
    geo           numeric(5,2),
    ugc           numeric(5,2),
    geolocal      numeric(5,2),
    observed_aiv  numeric(5,2),
    observed_rar  numeric(7,2)
) ON COMMIT DROP;

-- name: copy_signal_stage
COPY aoer_signal_stage (line, dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv,
                        observed_rar) FROM STDIN;

-- name: unknown_signal_dealers
-- Every line whose dealer id names no tenant (each is a bad row), first lines first.
SELECT s.line, s.dealer_id
FROM aoer_signal_stage s
WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.dealer_id)
ORDER BY s.line
LIMIT %(limit)s;

-- name: merge_signal_stage
WITH merged AS (
    INSERT INTO aiv_raw_signals AS r (dealer_id, date, seo, aeo, geo, ugc, geolocal,
                                      observed_aiv, observed_rar)
    SELECT dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv, observed_rar
    FROM aoer_signal_stage
    -- A value sent here is supplied directly (its `_derived` flag false). A day re-sent
    -- without aeo/geo keeps a value derived from its observations (DESIGN §14).
    ON CONFLICT (dealer_id, date) DO UPDATE
       SET seo = EXCLUDED.seo,
           aeo = CASE WHEN EXCLUDED.aeo IS NULL AND r.aeo_derived THEN r.aeo ELSE EXCLUDED.aeo END,
           aeo_derived = EXCLUDED.aeo IS NULL AND r.aeo_derived,
           geo = CASE WHEN EXCLUDED.geo IS NULL AND r.geo_derived THEN r.geo ELSE EXCLUDED.geo END,
           geo_derived = EXCLUDED.geo IS NULL AND r.geo_derived,
           ugc = EXCLUDED.ugc,
           geolocal = EXCLUDED.geolocal, observed_aiv = EXCLUDED.observed_aiv,
           observed_rar = EXCLUDED.observed_rar, updated_at = now()
    RETURNING 1
)
SELECT count(*)::integer AS upserted FROM merged;

-- name: recent_signal_levels
-- These tenants' aeo/geo of the last `days` days (rows with an aeo), oldest first.
SELECT dealer_id, date, aeo, geo
FROM aiv_raw_signals
WHERE dealer_id = ANY (%(ids)s) AND date > current_date - %(days)s AND aeo IS NOT NULL
ORDER BY dealer_id, date;

-- name: mark_signals_derived
-- The demo: its last days' aeo/geo become derivable, so observations of those days replace
-- them (DESIGN §14 provenance) instead of standing beside them.
UPDATE aiv_raw_signals
SET aeo_derived = true, geo_derived = true
WHERE dealer_id = ANY (%(ids)s) AND date > current_date - %(days)s;
