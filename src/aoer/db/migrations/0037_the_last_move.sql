-- The last recompute that moved a tenant's score, for the summary (`lastMove`): the "Why it
-- moved" panel showed the split of the last recompute, and a recompute that changes nothing
-- (the scheduled refresh of steady data, a "Recompute now") left it reading "47.00 → 47.00
-- (±0.00)" hours after a fall it should explain.
--
-- The newest `event_kind` event of the last `days` days (bounded: only those months'
-- partitions are read, newest first through the (tenant_id, created_at) index) whose score
-- differs from the one it replaced, both sides with data: a recompute into or out of "No
-- data" (risk 1.00, DESIGN §3) is no change to split, as 0031 has the summary say, although
-- its event stores a split. {at, previousScore, aoerScore, change}. A set-returning SQL function of one SELECT, so a
-- LATERAL join inlines it.
--
-- Its cost is the events it reads back to the last move: one when the last recompute moved
-- the score, the day's few when daily signals move it once a day. Measured at the worst
-- (no move in 30 days, 120 events each, 1,000 tenants): 0.19 ms a tenant against 0.02 ms
-- for aoer_summary_context, i.e. ~28 ms for the 150 tenants of one NOTIFY the event hub
-- re-reads, off any request's path.
CREATE FUNCTION aoer_last_move(tenant uuid, event_kind text, days integer)
RETURNS TABLE (last_move jsonb)
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('at', e.created_at,
                              'previousScore', (e.event_data #>> '{previous,aoerScore}')::numeric,
                              'aoerScore', (e.event_data ->> 'aoerScore')::numeric,
                              'change', e.event_data -> 'change')
    FROM metrics_events e
    WHERE e.tenant_id = tenant
      AND e.event_type = event_kind
      AND e.created_at >= now() - make_interval(days => days)
      AND jsonb_typeof(e.event_data -> 'change') = 'object'
      AND aoer_has_data(e.event_data -> 'metrics')
      AND (e.event_data #>> '{previous,visibilityRisk}')::numeric < 1
      AND (e.event_data ->> 'aoerScore')::numeric
          IS DISTINCT FROM (e.event_data #>> '{previous,aoerScore}')::numeric
    ORDER BY e.created_at DESC
    LIMIT 1
$$;
