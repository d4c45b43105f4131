-- The old system's dashboards let a signed-in dealer press "refresh": PostgREST called
-- `rpc('queue_tenant_recompute')` as Supabase's `authenticated` role with the dealer's JWT
-- claims, and the old function was SECURITY DEFINER. Here it runs with the caller's rights
-- (0013), and a role that is not ours may write nothing (0030), so after adoption that call
-- failed with "permission denied for table aoer_queue", while `update_aoer_summary`, through
-- its definer-rights helper, worked for the same caller.
--
-- The enqueue itself now runs as the owner in `aoer_enqueue_as_worker`, after
-- aoer_claims_admit (0013) has judged the caller as Row Level Security would: its own
-- tenant's claim, its organisation's, or a caller that sees every row (service_role, the
-- owner, aoer_app). Queuing is harmless to repeat (one waiting job per tenant, coalesced).
-- The helper checks everything itself (PUBLIC may call it, as the wrapper's callers must):
-- the caller, the priority, and that the tenant exists and is active (DESIGN §4: nothing is
-- written otherwise). queue_tenant_recompute checks the tenant with the caller's rights
-- first, so one the caller cannot see is "unknown tenant" there, as before.
CREATE FUNCTION aoer_enqueue_as_worker(tenant_uuid uuid, priority_level varchar)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    job uuid;
    is_active boolean;
BEGIN
    IF NOT coalesce(aoer_claims_admit(tenant_uuid), false) THEN
        RAISE EXCEPTION 'tenant % is not yours to queue', tenant_uuid
            USING ERRCODE = 'insufficient_privilege';
    END IF;
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

CREATE OR REPLACE FUNCTION queue_tenant_recompute(tenant_uuid uuid,
                                                  priority_level varchar DEFAULT 'medium')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    -- With the caller's rights: a tenant it cannot see is unknown to it, never "not yours".
    IF NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = tenant_uuid) THEN
        RAISE EXCEPTION 'unknown tenant %', tenant_uuid USING ERRCODE = 'no_data_found';
    END IF;
    RETURN aoer_enqueue_as_worker(tenant_uuid, priority_level);
END
$$;
