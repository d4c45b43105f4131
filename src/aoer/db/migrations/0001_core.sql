-- Core schema: tenants, signals, summaries, events, the queue, failures, scheduler ticks, views.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    domain      text,
    city        text,
    region      text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_active_idx ON tenants (id) WHERE active;

CREATE TABLE aiv_raw_signals (
    dealer_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    date          date NOT NULL,
    seo           numeric(5,2) CHECK (seo BETWEEN 0 AND 100),
    aeo           numeric(5,2) CHECK (aeo BETWEEN 0 AND 100),
    geo           numeric(5,2) CHECK (geo BETWEEN 0 AND 100),
    ugc           numeric(5,2) CHECK (ugc BETWEEN 0 AND 100),
    geolocal      numeric(5,2) CHECK (geolocal BETWEEN 0 AND 100),
    observed_aiv  numeric(5,2) CHECK (observed_aiv BETWEEN 0 AND 100),
    observed_rar  numeric(7,2) CHECK (observed_rar >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_id, date)
);

CREATE TABLE aoer_summary (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL UNIQUE REFERENCES tenants (id) ON DELETE CASCADE,
    aoer_score       numeric(5,2) NOT NULL CHECK (aoer_score BETWEEN 0 AND 100),
    visibility_risk  numeric(3,2) NOT NULL CHECK (visibility_risk BETWEEN 0 AND 1),
    last_updated     timestamptz NOT NULL DEFAULT now(),
    metrics          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE metrics_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_type  varchar(50) NOT NULL,
    event_data  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX metrics_events_tenant_created_idx ON metrics_events (tenant_id, created_at DESC);
CREATE INDEX metrics_events_created_idx ON metrics_events (created_at);

-- Priority as a number so the claim can walk one index in order.
CREATE FUNCTION aoer_priority_rank(priority text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE priority
        WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1
    END::smallint
$$;

CREATE TABLE aoer_queue (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    priority          varchar(10) NOT NULL DEFAULT 'medium'
                      CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    priority_rank     smallint GENERATED ALWAYS AS (aoer_priority_rank(priority)) STORED,
    status            varchar(20) NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
    retry_count       integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    max_retries       integer NOT NULL DEFAULT 3 CHECK (max_retries >= 1),
    scheduled_at      timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz,
    error_message     text,
    locked_by         text,
    lease_expires_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'processing' OR (locked_by IS NOT NULL AND lease_expires_at IS NOT NULL))
);
-- At most one waiting job per tenant: enqueue coalesces into it.
CREATE UNIQUE INDEX aoer_queue_one_queued_per_tenant ON aoer_queue (tenant_id)
    WHERE status = 'queued';
-- The claim walks this index in priority order.
CREATE INDEX aoer_queue_claim_idx ON aoer_queue (priority_rank DESC, scheduled_at)
    WHERE status = 'queued';
-- Lease recovery looks only at jobs in flight.
CREATE INDEX aoer_queue_lease_idx ON aoer_queue (lease_expires_at)
    WHERE status = 'processing';
CREATE INDEX aoer_queue_tenant_status_idx ON aoer_queue (tenant_id, status);
CREATE INDEX aoer_queue_finished_idx ON aoer_queue (completed_at)
    WHERE status IN ('completed', 'failed');

CREATE TABLE aoer_failures (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_id         uuid REFERENCES aoer_queue (id) ON DELETE SET NULL,
    error_message  text NOT NULL,
    error_data     jsonb NOT NULL DEFAULT '{}'::jsonb,
    retry_count    integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX aoer_failures_tenant_created_idx ON aoer_failures (tenant_id, created_at DESC);
CREATE INDEX aoer_failures_created_idx ON aoer_failures (created_at);

-- One row per cron tick that fired: the primary key makes each tick fire once across workers.
CREATE TABLE aoer_cron_ticks (
    name       text NOT NULL,
    tick       timestamptz NOT NULL,
    fired_by   text NOT NULL,
    fired_at   timestamptz NOT NULL DEFAULT now(),
    result     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (name, tick)
);

CREATE FUNCTION aoer_grade(score numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE WHEN score >= 80 THEN 'Excellent' WHEN score >= 60 THEN 'Good'
                WHEN score >= 40 THEN 'Fair' ELSE 'Poor' END
$$;

CREATE FUNCTION aoer_risk_level(risk numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE WHEN risk <= 0.2 THEN 'Low' WHEN risk <= 0.5 THEN 'Medium'
                WHEN risk <= 0.8 THEN 'High' ELSE 'Critical' END
$$;

-- The AOER v1 score (DESIGN §3) for a set of tenants, in one statement. Exact numeric
-- arithmetic throughout; tenants without rows in the window score 0.00 with risk 1.00.
CREATE FUNCTION aoer_compute_scores(tenant_ids uuid[])
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH ids AS (
        SELECT DISTINCT unnest(tenant_ids) AS tenant_id
    ),
    w AS (
        SELECT s.dealer_id AS tenant_id,
               count(*)::integer                          AS n,
               round(avg(s.aeo), 2)                       AS avg_aeo,
               round(coalesce(avg(s.geo), 0), 2)          AS avg_geo,
               round(coalesce(avg(s.ugc), 0), 2)          AS avg_ugc,
               round(coalesce(stddev_samp(s.aeo), 0), 2)  AS volatility,
               (current_date - max(s.date))::integer      AS days_since
        FROM aiv_raw_signals s
        WHERE s.dealer_id = ANY (tenant_ids)
          AND s.date BETWEEN current_date - 30 AND current_date
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
    )
    SELECT ids.tenant_id,
           coalesce(sc.score, 0.00),
           coalesce(sc.risk, 1.00),
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
           END
    FROM ids
    LEFT JOIN scored sc ON sc.tenant_id = ids.tenant_id
$$;

-- Compute and upsert the summaries of a set of tenants; returns what was stored.
CREATE FUNCTION aoer_store_scores(tenant_ids uuid[])
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb)
LANGUAGE sql VOLATILE AS $$
    INSERT INTO aoer_summary AS s (tenant_id, aoer_score, visibility_risk, metrics, last_updated)
    SELECT c.tenant_id, c.aoer_score, c.visibility_risk, c.metrics, now()
    FROM aoer_compute_scores(tenant_ids) c
    ON CONFLICT (tenant_id) DO UPDATE
       SET aoer_score = EXCLUDED.aoer_score,
           visibility_risk = EXCLUDED.visibility_risk,
           metrics = EXCLUDED.metrics,
           last_updated = EXCLUDED.last_updated,
           updated_at = now()
    RETURNING s.tenant_id, s.aoer_score, s.visibility_risk, s.metrics
$$;

CREATE VIEW v_aoer_dashboard WITH (security_invoker = true) AS
SELECT s.tenant_id,
       t.name AS tenant_name,
       s.aoer_score,
       s.visibility_risk,
       s.last_updated,
       s.metrics,
       aoer_grade(s.aoer_score) AS grade,
       aoer_risk_level(s.visibility_risk) AS risk_level
FROM aoer_summary s
JOIN tenants t ON t.id = s.tenant_id;

CREATE VIEW v_aoer_queue_status WITH (security_invoker = true) AS
SELECT status,
       priority,
       count(*) AS job_count,
       min(created_at) AS oldest_job,
       max(created_at) AS newest_job
FROM aoer_queue
GROUP BY status, priority;
