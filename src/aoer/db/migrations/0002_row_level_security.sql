-- Row Level Security on every tenant-owned table (DESIGN §2, §7).
--
-- Policies read the tenant from the JWT claims setting that Supabase's auth.jwt() reads, so
-- the same policies hold under this API (which sets it with set_config(..., true) inside the
-- request's transaction) and under Supabase/PostgREST. The API reads and writes for tenant
-- tokens as the non-owner role `aoer_tenant`; the table owner (workers, admin requests)
-- is not subject to RLS.

-- Roles are cluster-global: every database on the server shares them, and several databases
-- may be migrated at once, so creation tolerates a concurrent creator.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aoer_tenant') THEN
        CREATE ROLE aoer_tenant NOLOGIN NOINHERIT;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The migrating (owner) role must be able to SET ROLE aoer_tenant; a superuser always can.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'aoer_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT aoer_tenant TO %I', current_user);
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The tenant id of the request's claims; NULL (no rows) when no claims are set. An empty
-- setting (a session that set the claims once and left the transaction) reads as NULL too.
CREATE FUNCTION aoer_claimed_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'tenant_id')::uuid
$$;

GRANT USAGE ON SCHEMA public TO aoer_tenant;
GRANT SELECT ON tenants, aoer_summary, metrics_events, aoer_failures TO aoer_tenant;
-- A tenant may send its own signals and queue its own recomputes.
GRANT SELECT, INSERT, UPDATE ON aiv_raw_signals, aoer_queue TO aoer_tenant;
GRANT SELECT ON v_aoer_dashboard, v_aoer_queue_status TO aoer_tenant;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenants_own_row ON tenants
    USING (id = aoer_claimed_tenant_id())
    WITH CHECK (id = aoer_claimed_tenant_id());

ALTER TABLE aiv_raw_signals ENABLE ROW LEVEL SECURITY;
CREATE POLICY aiv_raw_signals_own_rows ON aiv_raw_signals
    USING (dealer_id = aoer_claimed_tenant_id())
    WITH CHECK (dealer_id = aoer_claimed_tenant_id());

ALTER TABLE aoer_summary ENABLE ROW LEVEL SECURITY;
CREATE POLICY aoer_summary_own_rows ON aoer_summary
    USING (tenant_id = aoer_claimed_tenant_id())
    WITH CHECK (tenant_id = aoer_claimed_tenant_id());

ALTER TABLE metrics_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY metrics_events_own_rows ON metrics_events
    USING (tenant_id = aoer_claimed_tenant_id())
    WITH CHECK (tenant_id = aoer_claimed_tenant_id());

ALTER TABLE aoer_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY aoer_queue_own_rows ON aoer_queue
    USING (tenant_id = aoer_claimed_tenant_id())
    WITH CHECK (tenant_id = aoer_claimed_tenant_id());

ALTER TABLE aoer_failures ENABLE ROW LEVEL SECURITY;
CREATE POLICY aoer_failures_own_rows ON aoer_failures
    USING (tenant_id = aoer_claimed_tenant_id())
    WITH CHECK (tenant_id = aoer_claimed_tenant_id());
