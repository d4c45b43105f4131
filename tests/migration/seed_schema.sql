-- A reconstruction of the old Node/Supabase system's database, for the adoption tests
-- (DESIGN §17): what `supabase/migrations/20241220000002_aoer_tables.sql` built, from DESIGN §2
-- and the old deployment guide, with its original, buggier functions; the `aiv_raw_signals`
-- table of the migration before it; and a stand-in for the `auth` schema Supabase provides.
--
-- No `tenants` table (the old system kept dealerships elsewhere), no leases, no priority rank,
-- no one-waiting-job rule, and no CHECK on priorities, statuses or score ranges: an old
-- database may hold anything its columns' types allow.

-- Supabase's auth.jwt(), as Supabase defines it: the request's claims PostgREST sets.
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;

-- 20241220000001: the daily signals, one row per dealer and day.
CREATE TABLE IF NOT EXISTS aiv_raw_signals (
    dealer_id     UUID NOT NULL,
    date          DATE NOT NULL,
    seo           DECIMAL(5,2),
    aeo           DECIMAL(5,2),
    geo           DECIMAL(5,2),
    ugc           DECIMAL(5,2),
    geolocal      DECIMAL(5,2),
    observed_aiv  DECIMAL(5,2),
    observed_rar  DECIMAL(7,2),
    created_at    TIMESTAMPTZ DEFAULT NOW(),
    updated_at    TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE (dealer_id, date)
);
CREATE INDEX IF NOT EXISTS idx_aiv_raw_signals_dealer_date ON aiv_raw_signals (dealer_id, date DESC);

-- 20241220000002_aoer_tables.sql
CREATE TABLE IF NOT EXISTS aoer_summary (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        UUID UNIQUE NOT NULL,
    aoer_score       DECIMAL(5,2) NOT NULL DEFAULT 0,
    visibility_risk  DECIMAL(3,2) NOT NULL DEFAULT 0,
    last_updated     TIMESTAMPTZ DEFAULT NOW(),
    metrics          JSONB DEFAULT '{}',
    created_at       TIMESTAMPTZ DEFAULT NOW(),
    updated_at       TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS metrics_events (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   UUID NOT NULL,
    event_type  VARCHAR(50) NOT NULL,
    event_data  JSONB DEFAULT '{}',
    created_at  TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS aoer_queue (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      UUID NOT NULL,
    priority       VARCHAR(10) DEFAULT 'medium',
    status         VARCHAR(20) DEFAULT 'queued',
    retry_count    INTEGER DEFAULT 0,
    max_retries    INTEGER DEFAULT 3,
    scheduled_at   TIMESTAMPTZ DEFAULT NOW(),
    started_at     TIMESTAMPTZ,
    completed_at   TIMESTAMPTZ,
    error_message  TEXT,
    created_at     TIMESTAMPTZ DEFAULT NOW(),
    updated_at     TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS aoer_failures (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      UUID NOT NULL,
    error_message  TEXT NOT NULL,
    error_data     JSONB DEFAULT '{}',
    retry_count    INTEGER DEFAULT 0,
    created_at     TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_aoer_summary_tenant_id ON aoer_summary (tenant_id);
CREATE INDEX IF NOT EXISTS idx_aoer_summary_updated_at ON aoer_summary (updated_at);
CREATE INDEX IF NOT EXISTS idx_metrics_events_tenant_id ON metrics_events (tenant_id);
CREATE INDEX IF NOT EXISTS idx_metrics_events_type_created ON metrics_events (event_type, created_at);
CREATE INDEX IF NOT EXISTS idx_aoer_queue_status_priority ON aoer_queue (status, priority);
CREATE INDEX IF NOT EXISTS idx_aoer_queue_tenant_id ON aoer_queue (tenant_id);
CREATE INDEX IF NOT EXISTS idx_aoer_queue_scheduled_at ON aoer_queue (scheduled_at);
CREATE INDEX IF NOT EXISTS idx_aoer_failures_tenant_id ON aoer_failures (tenant_id);

CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER update_aoer_summary_updated_at BEFORE UPDATE ON aoer_summary
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_aoer_queue_updated_at BEFORE UPDATE ON aoer_queue
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- Computes on floats of averages over NOW() - 30 days (not the calendar window), leaves NULL
-- geo/ugc averages NULL, takes a NULL stddev for one point, and rounds nothing before weighting.
CREATE OR REPLACE FUNCTION compute_aoer_for_tenant(tenant_uuid UUID)
RETURNS TABLE (tenant_id UUID, aoer_score DECIMAL(5,2), visibility_risk DECIMAL(3,2),
               metrics JSONB) AS $$
DECLARE
    avg_aeo DECIMAL;
    avg_geo DECIMAL;
    avg_ugc DECIMAL;
    volatility DECIMAL;
    data_points INTEGER;
    days_since INTEGER;
    score DECIMAL;
    risk DECIMAL;
BEGIN
    SELECT AVG(s.aeo), AVG(s.geo), AVG(s.ugc), STDDEV(s.aeo), COUNT(*),
           EXTRACT(DAY FROM NOW() - MAX(s.date))
    INTO avg_aeo, avg_geo, avg_ugc, volatility, data_points, days_since
    FROM aiv_raw_signals s
    WHERE s.dealer_id = tenant_uuid AND s.date >= NOW() - INTERVAL '30 days';

    IF data_points = 0 THEN
        RETURN QUERY SELECT tenant_uuid, 0.00::DECIMAL(5,2), 1.00::DECIMAL(3,2),
                            '{"error": "No data available"}'::JSONB;
        RETURN;
    END IF;

    score := (avg_aeo * 0.4 + avg_geo * 0.35 + avg_ugc * 0.25)
             * (1 - LEAST(volatility / 20, 0.3));
    risk := CASE WHEN data_points < 5 THEN 0.8 WHEN days_since > 7 THEN 0.6
                 WHEN volatility > 15 THEN 0.4 ELSE 0.2 END;

    RETURN QUERY SELECT tenant_uuid, ROUND(score, 2)::DECIMAL(5,2), risk::DECIMAL(3,2),
        jsonb_build_object('avgAEO', avg_aeo, 'avgGEO', avg_geo, 'avgUGC', avg_ugc,
                           'volatility', volatility, 'dataPoints', data_points,
                           'daysSinceLastData', days_since);
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION update_aoer_summary(tenant_uuid UUID)
RETURNS BOOLEAN AS $$
DECLARE
    result RECORD;
BEGIN
    SELECT * INTO result FROM compute_aoer_for_tenant(tenant_uuid);

    INSERT INTO aoer_summary (tenant_id, aoer_score, visibility_risk, metrics, last_updated)
    VALUES (tenant_uuid, result.aoer_score, result.visibility_risk, result.metrics, NOW())
    ON CONFLICT (tenant_id) DO UPDATE SET
        aoer_score = EXCLUDED.aoer_score,
        visibility_risk = EXCLUDED.visibility_risk,
        metrics = EXCLUDED.metrics,
        last_updated = EXCLUDED.last_updated;

    INSERT INTO metrics_events (tenant_id, event_type, event_data)
    VALUES (tenant_uuid, 'aoer_recompute',
            jsonb_build_object('aoer_score', result.aoer_score,
                               'visibility_risk', result.visibility_risk,
                               'metrics', result.metrics));
    RETURN TRUE;
EXCEPTION WHEN OTHERS THEN
    INSERT INTO aoer_failures (tenant_id, error_message, error_data)
    VALUES (tenant_uuid, SQLERRM, jsonb_build_object('function', 'update_aoer_summary'));
    RETURN FALSE;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER;

-- Always a new row: a tenant queued twice waits twice.
CREATE OR REPLACE FUNCTION queue_tenant_recompute(tenant_uuid UUID,
                                                  priority_level VARCHAR DEFAULT 'medium')
RETURNS UUID AS $$
DECLARE
    job_id UUID;
BEGIN
    INSERT INTO aoer_queue (tenant_id, priority, status, scheduled_at)
    VALUES (tenant_uuid, priority_level, 'queued', NOW())
    RETURNING id INTO job_id;
    RETURN job_id;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER;

CREATE OR REPLACE FUNCTION get_aoer_queue_status()
RETURNS TABLE (status VARCHAR(20), priority VARCHAR(10), job_count BIGINT,
               oldest_job TIMESTAMPTZ, newest_job TIMESTAMPTZ) AS $$
BEGIN
    RETURN QUERY
    SELECT q.status, q.priority, COUNT(*), MIN(q.scheduled_at), MAX(q.scheduled_at)
    FROM aoer_queue q
    WHERE q.status IN ('queued', 'processing')
    GROUP BY q.status, q.priority
    ORDER BY q.priority DESC, q.status;
END;
$$ LANGUAGE plpgsql;

-- The two views exactly as the old migration wrote them (column names and order included).
CREATE OR REPLACE VIEW v_aoer_dashboard AS
SELECT s.tenant_id,
       s.aoer_score,
       s.visibility_risk,
       s.last_updated,
       s.metrics,
       CASE WHEN s.aoer_score >= 80 THEN 'Excellent'
            WHEN s.aoer_score >= 60 THEN 'Good'
            WHEN s.aoer_score >= 40 THEN 'Fair'
            ELSE 'Poor' END AS aoer_grade,
       CASE WHEN s.visibility_risk <= 0.2 THEN 'Low'
            WHEN s.visibility_risk <= 0.5 THEN 'Medium'
            WHEN s.visibility_risk <= 0.8 THEN 'High'
            ELSE 'Critical' END AS risk_level
FROM aoer_summary s;

CREATE OR REPLACE VIEW v_aoer_queue_status AS
SELECT status, priority, COUNT(*) AS job_count, MIN(scheduled_at) AS oldest_job,
       MAX(scheduled_at) AS newest_job
FROM aoer_queue
WHERE status IN ('queued', 'processing')
GROUP BY status, priority;

ALTER TABLE aoer_summary ENABLE ROW LEVEL SECURITY;
ALTER TABLE metrics_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE aoer_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE aoer_failures ENABLE ROW LEVEL SECURITY;

CREATE POLICY "Users can view their tenant's AOER summary" ON aoer_summary
    FOR SELECT USING (tenant_id::text = auth.jwt() ->> 'tenant_id');
CREATE POLICY "Service role can manage AOER summary" ON aoer_summary
    FOR ALL USING (auth.jwt() ->> 'role' = 'service_role');
CREATE POLICY "Users can view their tenant's metrics events" ON metrics_events
    FOR SELECT USING (tenant_id::text = auth.jwt() ->> 'tenant_id');
CREATE POLICY "Service role can manage metrics events" ON metrics_events
    FOR ALL USING (auth.jwt() ->> 'role' = 'service_role');
CREATE POLICY "Users can view their tenant's queue" ON aoer_queue
    FOR SELECT USING (tenant_id::text = auth.jwt() ->> 'tenant_id');
CREATE POLICY "Service role can manage AOER queue" ON aoer_queue
    FOR ALL USING (auth.jwt() ->> 'role' = 'service_role');
CREATE POLICY "Users can view their tenant's failures" ON aoer_failures
    FOR SELECT USING (tenant_id::text = auth.jwt() ->> 'tenant_id');
CREATE POLICY "Service role can manage AOER failures" ON aoer_failures
    FOR ALL USING (auth.jwt() ->> 'role' = 'service_role');
