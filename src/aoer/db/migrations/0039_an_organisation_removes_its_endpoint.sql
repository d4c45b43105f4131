-- An organisation removing its own webhook endpoint got a 500, "permission denied for table
-- alert_deliveries": removing one first ends its pending deliveries `failed` and takes it
-- out of the rules naming it (alerts.sql, detach_endpoint), and a scoped caller (aoer_tenant)
-- may only read deliveries (0015). Nor could its Row Level Security see every delivery to
-- its endpoint: one of an alert another organisation owns now (0036) stays pending, and the
-- endpoint's removal then broke the rule that a pending delivery has a target.
--
-- The detach runs as the owner here, for the endpoint's own organisation (its claim) or a
-- caller that is not scoped (the API's admin requests and the CLI run as the app role or the
-- owner); EXECUTE is the app's and aoer_tenant's only. Rules of another owner that name the
-- endpoint drop it too: an id naming nothing would only be skipped when alerts are raised.
CREATE FUNCTION aoer_detach_endpoint(endpoint_uuid uuid) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    owner uuid;
    cancelled integer;
BEGIN
    SELECT e.org_id INTO owner FROM alert_endpoints e WHERE e.id = endpoint_uuid;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF current_setting('role') = 'aoer_tenant'
       AND (owner IS NULL OR owner IS DISTINCT FROM aoer_claimed_org_id()) THEN
        RAISE EXCEPTION 'alert endpoint % is not yours', endpoint_uuid
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE alert_deliveries
       SET status = 'failed', last_error = 'endpoint deleted', locked_by = NULL
     WHERE endpoint_id = endpoint_uuid AND status = 'pending';
    GET DIAGNOSTICS cancelled = ROW_COUNT;
    UPDATE alert_rules
       SET endpoint_ids = array_remove(endpoint_ids, endpoint_uuid)
     WHERE endpoint_uuid = ANY (endpoint_ids);
    RETURN cancelled;
END
$$;
REVOKE EXECUTE ON FUNCTION aoer_detach_endpoint(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aoer_detach_endpoint(uuid) TO aoer_tenant;
