-- The old system's database API (DESIGN §17): the four functions its scripts and dashboards
-- call through Supabase's `rpc`, with their names, arguments and result shapes, computing
-- exactly what the workers store. They run with the caller's rights (SECURITY INVOKER), so a
-- scoped caller (`aoer_tenant` with `request.jwt.claims` naming a tenant or an organisation)
-- sees and acts on its own tenants only, as Row Level Security limits everything else.

-- The score needs the champion's weights; a scoped caller computing its own score reads them.
GRANT SELECT ON model_weights TO aoer_tenant;

-- The current model's score for one tenant: the very function the workers store from. An
-- unknown tenant, or one the caller's claims do not admit, gives no row.
CREATE FUNCTION compute_aoer_for_tenant(tenant_uuid uuid)
RETURNS TABLE (tenant_id uuid, aoer_score numeric(5,2), visibility_risk numeric(3,2),
               metrics jsonb)
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT c.tenant_id, c.aoer_score::numeric(5,2), c.visibility_risk::numeric(3,2), c.metrics
    FROM aoer_compute_scores(ARRAY[tenant_uuid]) c
    WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_uuid)
$$;

-- Whether the caller may act on this tenant, judged inside SECURITY DEFINER functions (where
-- Row Level Security no longer applies) as RLS would judge it. With claims: the tenant's own
-- tenant claim, or the organisation claim of its organisation. Without claims: only a caller
-- that sees every row anyway -- the owner (or a superuser), a BYPASSRLS role such as
-- Supabase's service_role, or a member of aoer_app (workers, the API) -- never aoer_tenant or
-- PostgREST's anon and authenticated. The caller is the role it switched to with SET ROLE
-- (the `role` setting; definer rights do not change it), else the login role.
CREATE FUNCTION aoer_claims_admit(tenant_uuid uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    WITH caller AS (
        SELECT CASE current_setting('role') WHEN 'none' THEN session_user::text
                    ELSE current_setting('role') END AS name
    )
    SELECT CASE
        WHEN aoer_claimed_tenant_id() IS NULL AND aoer_claimed_org_id() IS NULL THEN
            coalesce((SELECT r.rolbypassrls
                             OR pg_has_role(r.oid, c.relowner, 'USAGE')
                             OR pg_has_role(r.oid, 'aoer_app', 'USAGE')
                      FROM caller
                      JOIN pg_roles r ON r.rolname = caller.name
                      CROSS JOIN pg_class c
                      WHERE c.oid = 'tenants'::regclass), false)
        ELSE coalesce(tenant_uuid = aoer_claimed_tenant_id(), false)
             OR EXISTS (SELECT 1 FROM tenants t
                        WHERE t.id = tenant_uuid AND t.org_id = aoer_claimed_org_id())
    END
$$;

-- Recompute and store one tenant as a worker does: the summary upserted by aoer_store_scores,
-- one `aoer_recompute` event with the worker's keys (no job, no worker: `source` says who),
-- the summary-updated NOTIFY that evicts API caches and feeds live dashboards. Any error is
-- recorded as an `aoer_failures` row and answers false. SECURITY DEFINER because a tenant may
-- not write summaries or events itself (it could forge its score); what it stores is a pure
-- function of the signals, and aoer_claims_admit keeps a scoped caller to its own tenants.
-- Columns aoer_store_scores may return beyond the four join the event under their own names.
CREATE FUNCTION aoer_store_summary_as_worker(tenant_uuid uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    stored jsonb;
BEGIN
    IF NOT coalesce(aoer_claims_admit(tenant_uuid), false) THEN
        RAISE EXCEPTION 'tenant % is not yours to recompute', tenant_uuid
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    BEGIN
        SELECT to_jsonb(s) INTO stored FROM aoer_store_scores(ARRAY[tenant_uuid]) s;
        INSERT INTO metrics_events (tenant_id, event_type, event_data)
        VALUES (tenant_uuid, 'aoer_recompute',
                jsonb_build_object('jobId', NULL,
                                   'priority', NULL,
                                   'aoerScore', stored -> 'aoer_score',
                                   'visibilityRisk', stored -> 'visibility_risk',
                                   'metrics', stored -> 'metrics',
                                   'workerId', NULL,
                                   'source', 'update_aoer_summary')
                || (stored - 'tenant_id' - 'aoer_score' - 'visibility_risk' - 'metrics'));
        PERFORM pg_notify('aoer_summary_updated', tenant_uuid::text);
        RETURN true;
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO aoer_failures (tenant_id, error_message, error_data, retry_count)
        VALUES (tenant_uuid, SQLERRM,
                jsonb_build_object('source', 'update_aoer_summary', 'sqlstate', SQLSTATE), 0);
        RETURN false;
    END;
END
$$;

-- The old entry point: true once stored; false (with a failure row) on error. An unknown
-- tenant, or one the caller's claims do not admit, is an error: there is nothing to store.
CREATE FUNCTION update_aoer_summary(tenant_uuid uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_uuid) THEN
        RAISE EXCEPTION 'unknown tenant %', tenant_uuid USING ERRCODE = 'no_data_found';
    END IF;
    RETURN aoer_store_summary_as_worker(tenant_uuid);
END
$$;

-- Enqueue as the API does (DESIGN §4): a waiting job of the tenant is reused, its priority
-- raised to the higher of the two and its scheduled_at moved earlier; otherwise a new job.
-- Wakes the workers on the API's channel (constants.QUEUE_CHANNEL, payload the priority) when
-- the caller commits. Unknown, inactive or not-admitted tenants and unknown priorities are
-- errors; nothing is written. max_retries is the column's default (AOER_MAX_RETRIES is the
-- API's setting, unknown to the database).
CREATE FUNCTION queue_tenant_recompute(tenant_uuid uuid, priority_level varchar DEFAULT 'medium')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    job uuid;
    is_active boolean;
BEGIN
    IF aoer_priority_rank(priority_level) IS NULL THEN
        RAISE EXCEPTION 'unknown priority %: expected one of low, medium, high, urgent',
            coalesce(quote_literal(priority_level), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.active INTO is_active FROM tenants t WHERE t.id = tenant_uuid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tenant %', tenant_uuid USING ERRCODE = 'no_data_found';
    ELSIF NOT is_active THEN
        RAISE EXCEPTION 'tenant % is inactive', tenant_uuid
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    INSERT INTO aoer_queue AS q (tenant_id, priority, scheduled_at)
    VALUES (tenant_uuid, priority_level, now())
    ON CONFLICT (tenant_id) WHERE status = 'queued' DO UPDATE
       SET priority = CASE WHEN aoer_priority_rank(EXCLUDED.priority) > q.priority_rank
                           THEN EXCLUDED.priority ELSE q.priority END,
           scheduled_at = least(q.scheduled_at, EXCLUDED.scheduled_at),
           updated_at = now()
    RETURNING q.id INTO job;
    PERFORM pg_notify('aoer_queue', priority_level);
    RETURN job;
END
$$;

-- Jobs waiting and in flight by status and priority (the caller's own under claims).
CREATE FUNCTION get_aoer_queue_status()
RETURNS TABLE (status varchar, priority varchar, job_count bigint, oldest_job timestamptz,
               newest_job timestamptz)
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT q.status, q.priority, count(*), min(q.created_at), max(q.created_at)
    FROM aoer_queue q
    WHERE q.status IN ('queued', 'processing')
    GROUP BY q.status, q.priority
    ORDER BY q.status DESC, aoer_priority_rank(q.priority) DESC
$$;
