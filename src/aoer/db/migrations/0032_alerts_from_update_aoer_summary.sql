-- Alerts from the old system's update_aoer_summary too (DESIGN §17: "exactly as a worker does";
-- §13: a recompute raises the alerts of its transitions). Until now only the worker's batch
-- raised them, from a statement of its own (db/sql/alerts.sql), so a script recomputing a
-- dealership through `rpc('update_aoer_summary')` moved its grade from Excellent to Poor
-- without a word to anyone watching it. The statement moves here, as aoer_raise_alerts, and
-- both callers run this one definition: the worker's batch (db/sql/alerts.sql, raise_alerts)
-- and aoer_store_summary_as_worker below.
--
-- Raise the alerts of recomputes already stored in this transaction, and of jobs that ended
-- `failed` (`failed_job_ids`): one statement. Each recompute comes as one element of the
-- first seven arrays: the job (or, for update_aoer_summary, its recompute event) that the
-- dedup key names, the tenant, the new score, risk and data age, and the summary it replaced
-- (`previous_*`: read under the row lock the recompute took, so two recomputes of one tenant
-- are serialised and the second compares with the first's result). So risk_level_up and
-- grade_down need no lookup at all; score_drop reads its reference (the score as of `days`
-- ago) and stale_data the previous data age from the recompute events, one index probe each,
-- only for tenants that such a rule watches.
--
-- Cheap when nothing watches: `armed` is a one-time check of the two partial rule indexes,
-- and with no active rule nothing else is read. The dedup key is rule:tenant:<job id>
-- (job_failed: rule:tenant:failed:<job id>:<completed_at>): a job completes once, and a batch
-- retried after a rollback raised nothing the first time; ON CONFLICT DO NOTHING makes a
-- replay harmless. Each inserted alert gets one pending delivery per active endpoint (an
-- administrator's, or one of the dealership's organisation now) and e-mail address of its
-- rule, and NOTIFY (channel constants.ALERT_CHANNEL) wakes the delivery workers and the API's
-- live feed. 'aoer_recompute' is constants.RECOMPUTE_EVENT.
--
-- `SET jit = off`: the statement's plan is estimated far above jit_above_cost (its per-tenant
-- lookups are costed pessimistically), and compiling it took 1-2 s per batch (measured:
-- Inlining 63 ms, Optimization 567 ms, Emission 472 ms) for a statement that runs in
-- milliseconds. A SQL function plans its statement at each call, as the worker's statement
-- was planned at each execution.
CREATE FUNCTION aoer_raise_alerts(job_ids uuid[], tenant_ids uuid[], scores numeric[],
                                  risks numeric[], data_days integer[],
                                  previous_scores numeric[], previous_risks numeric[],
                                  failed_job_ids uuid[])
RETURNS TABLE (alerts integer, deliveries integer, notifications integer)
LANGUAGE sql VOLATILE SET jit = off AS $$
    WITH armed AS MATERIALIZED (
        SELECT EXISTS (SELECT 1 FROM alert_rules WHERE active AND tenant_id IS NOT NULL)
               OR EXISTS (SELECT 1 FROM alert_rules WHERE active AND org_id IS NOT NULL) AS yes
    ),
    input AS MATERIALIZED (
        SELECT *
        FROM unnest(job_ids, tenant_ids, scores, risks, data_days, previous_scores,
                    previous_risks)
             AS i (job_id, tenant_id, cur_score, cur_risk, cur_days, prev_score, prev_risk)
        WHERE (SELECT yes FROM armed)
    ),
    batch AS MATERIALIZED (
        SELECT i.*, t.name, t.org_id
        FROM input i
        -- One primary-key probe per recomputed tenant, never a scan of the fleet.
        CROSS JOIN LATERAL (SELECT name, org_id FROM tenants WHERE id = i.tenant_id OFFSET 0) t
        WHERE i.prev_score IS NOT NULL  -- a first recompute crosses nothing
    ),
    watch AS MATERIALIZED (
        SELECT r.id AS rule_id, r.kind, r.params, b.*
        FROM batch b
        JOIN alert_rules r ON r.tenant_id = b.tenant_id AND r.active AND r.kind <> 'job_failed'
        UNION ALL
        SELECT r.id, r.kind, r.params, b.*
        FROM batch b
        JOIN alert_rules r ON r.org_id = b.org_id AND r.active AND r.kind <> 'job_failed'
    ),
    judged AS (
        SELECT w.*, ref.score AS ref_score, stale.days AS prev_days,
               CASE w.kind
                   -- A side without data (risk 1.00, score 0.00: DESIGN §3; "No data" on the
                   -- pages) has no grade, risk level or score to compare: data that stops is
                   -- stale_data's to report, not "Excellent → Poor" (migration 0031 likewise).
                   WHEN 'risk_level_up' THEN
                       w.cur_risk > w.prev_risk AND w.cur_risk < 1 AND w.prev_risk < 1
                       AND aoer_risk_level(w.cur_risk) <> aoer_risk_level(w.prev_risk)
                   WHEN 'grade_down' THEN
                       w.cur_score < w.prev_score AND w.cur_risk < 1 AND w.prev_risk < 1
                       AND aoer_grade(w.cur_score) <> aoer_grade(w.prev_score)
                   WHEN 'score_drop' THEN
                       w.cur_risk < 1 AND w.prev_risk < 1 AND ref.had_data
                       AND ref.score - w.cur_score >= (w.params ->> 'points')::numeric
                       AND ref.score - w.prev_score < (w.params ->> 'points')::numeric
                   WHEN 'stale_data' THEN
                       -- No data in the window at all counts as stale.
                       coalesce(w.cur_days, 2147483647) > (w.params ->> 'days')::integer
                       AND coalesce(stale.days, 2147483647) <= (w.params ->> 'days')::integer
                   ELSE false
               END AS fires
        FROM watch w
        LEFT JOIN LATERAL (
            -- score_drop's reference: the score as of `days` ago (the last recompute then).
            SELECT (e.event_data ->> 'aoerScore')::numeric AS score,
                   aoer_has_data(e.event_data -> 'metrics') AS had_data
            FROM metrics_events e
            WHERE w.kind = 'score_drop'
              AND e.tenant_id = w.tenant_id
              AND e.created_at <= now() - make_interval(days => (w.params ->> 'days')::integer)
              AND e.event_type = 'aoer_recompute'
            ORDER BY e.created_at DESC
            LIMIT 1
        ) ref ON true
        LEFT JOIN LATERAL (
            -- stale_data: the data's age at the previous recompute (events before this one).
            SELECT (e.event_data -> 'metrics' ->> 'daysSinceLastData')::integer AS days
            FROM metrics_events e
            WHERE w.kind = 'stale_data'
              AND e.tenant_id = w.tenant_id
              AND e.created_at < now()
              AND e.event_type = 'aoer_recompute'
            ORDER BY e.created_at DESC
            LIMIT 1
        ) stale ON true
    ),
    failed AS MATERIALIZED (
        SELECT q.id AS job_id, q.tenant_id, t.name AS tenant_name, t.org_id, q.error_message,
               q.retry_count, q.completed_at
        FROM aoer_queue q
        JOIN tenants t ON t.id = q.tenant_id
        WHERE (SELECT yes FROM armed)
          AND q.id = ANY (failed_job_ids)
          AND q.status = 'failed'
          -- Attempts spent: not a job closed because the tenant's waiting job carries the retry.
          AND q.retry_count >= q.max_retries
    ),
    failed_watch AS (
        SELECT r.id AS rule_id, f.*
        FROM failed f
        JOIN alert_rules r ON r.tenant_id = f.tenant_id AND r.active AND r.kind = 'job_failed'
        UNION ALL
        SELECT r.id, f.*
        FROM failed f
        JOIN alert_rules r ON r.org_id = f.org_id AND r.active AND r.kind = 'job_failed'
    ),
    fired AS (
        SELECT gen_random_uuid() AS id, j.rule_id, j.tenant_id, j.kind,
               j.rule_id || ':' || j.tenant_id || ':' || j.job_id AS dedup_key,
               j.name AS tenant_name, j.params,
               jsonb_build_object('aoerScore', j.prev_score, 'visibilityRisk', j.prev_risk,
                                  'grade', CASE WHEN j.prev_risk < 1 THEN aoer_grade(j.prev_score)
                                                ELSE 'No data' END,
                                  'riskLevel', CASE WHEN j.prev_risk < 1
                                                    THEN aoer_risk_level(j.prev_risk)
                                                    ELSE 'No data' END)
                   || CASE WHEN j.kind = 'stale_data'
                           THEN jsonb_build_object('daysSinceLastData', j.prev_days)
                           ELSE '{}'::jsonb END AS previous,
               jsonb_build_object('aoerScore', j.cur_score, 'visibilityRisk', j.cur_risk,
                                  'grade', CASE WHEN j.cur_risk < 1 THEN aoer_grade(j.cur_score)
                                                ELSE 'No data' END,
                                  'riskLevel', CASE WHEN j.cur_risk < 1
                                                    THEN aoer_risk_level(j.cur_risk)
                                                    ELSE 'No data' END,
                                  'daysSinceLastData', j.cur_days) AS current,
               CASE WHEN j.kind = 'score_drop'
                    THEN jsonb_build_object('reference', jsonb_build_object(
                             'aoerScore', j.ref_score, 'days', (j.params ->> 'days')::integer),
                             'drop', j.ref_score - j.cur_score)
                    ELSE '{}'::jsonb END AS extra
        FROM judged j
        WHERE j.fires
        UNION ALL
        -- Keyed by the failure, not only the job: a failed job retried from the console keeps
        -- its id, and its next final failure is an alert of its own.
        SELECT gen_random_uuid(), fw.rule_id, fw.tenant_id, 'job_failed',
               fw.rule_id || ':' || fw.tenant_id || ':failed:' || fw.job_id || ':'
                   || (extract(epoch FROM fw.completed_at) * 1000000)::bigint,
               fw.tenant_name, '{}'::jsonb,
               NULL,
               (SELECT jsonb_build_object('aoerScore', s.aoer_score,
                                          'visibilityRisk', s.visibility_risk,
                                          'grade', aoer_grade(s.aoer_score),
                                          'riskLevel', aoer_risk_level(s.visibility_risk))
                FROM aoer_summary s WHERE s.tenant_id = fw.tenant_id),
               jsonb_build_object('job', jsonb_build_object('id', fw.job_id,
                                                             'error', fw.error_message,
                                                             'attempts', fw.retry_count))
        FROM failed_watch fw
    ),
    inserted AS (
        INSERT INTO alerts (id, rule_id, tenant_id, kind, dedup_key, data)
        SELECT f.id, f.rule_id, f.tenant_id, f.kind, f.dedup_key,
               jsonb_build_object('alertId', f.id, 'ruleId', f.rule_id, 'tenantId', f.tenant_id,
                                  'tenantName', f.tenant_name, 'kind', f.kind,
                                  'params', f.params, 'previous', f.previous,
                                  'current', f.current) || f.extra
        FROM fired f
        ORDER BY f.dedup_key  -- one lock order for concurrent batches
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id, rule_id, tenant_id
    ),
    deliveries AS (
        INSERT INTO alert_deliveries (alert_id, tenant_id, endpoint_id, email)
        SELECT i.id, i.tenant_id, e.id, NULL
        FROM inserted i
        JOIN alert_rules r ON r.id = i.rule_id
        JOIN tenants t ON t.id = i.tenant_id
        -- An organisation's endpoint hears of its own organisation's dealerships only.
        JOIN alert_endpoints e ON e.id = ANY (r.endpoint_ids) AND e.active
                              AND (e.org_id IS NULL OR e.org_id = t.org_id)
        UNION ALL
        SELECT i.id, i.tenant_id, NULL, m.email
        FROM inserted i
        JOIN alert_rules r ON r.id = i.rule_id
        CROSS JOIN LATERAL unnest(r.emails) AS m (email)
        RETURNING 1
    ),
    notified AS (
        -- Alert ids in payloads under NOTIFY's 8000-byte limit.
        SELECT pg_notify('aoer_alerts', string_agg(id::text, ','))
        FROM (SELECT id, (row_number() OVER () - 1) / 150 AS chunk FROM inserted) chunks
        GROUP BY chunk
    )
    SELECT (SELECT count(*) FROM inserted)::integer AS alerts,
           (SELECT count(*) FROM deliveries)::integer AS deliveries,
           (SELECT count(*) FROM notified)::integer AS notifications
$$;

-- Only the worker's roles raise alerts (`aoer migrate` grants EXECUTE on aoer_* functions to
-- aoer_app); a tenant could otherwise raise alerts of its own making.
REVOKE EXECUTE ON FUNCTION aoer_raise_alerts(uuid[], uuid[], numeric[], numeric[], integer[],
                                             numeric[], numeric[], uuid[]) FROM PUBLIC;

-- 0013's, raising the alerts of the recompute it stores. An alert that cannot be written (a
-- bug, a bad rule) is a warning and never fails the recompute, as in the worker's batch
-- (queue.raise_alerts runs in a savepoint; the inner block here is one). The dedup key names
-- the recompute's event, there being no job.
CREATE OR REPLACE FUNCTION aoer_store_summary_as_worker(tenant_uuid uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    stored jsonb;
    event uuid;
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
                || (stored - 'tenant_id' - 'aoer_score' - 'visibility_risk' - 'metrics'))
        RETURNING id INTO event;
        BEGIN
            PERFORM aoer_raise_alerts(
                ARRAY[event], ARRAY[tenant_uuid], ARRAY[(stored ->> 'aoer_score')::numeric],
                ARRAY[(stored ->> 'visibility_risk')::numeric],
                ARRAY[(stored -> 'metrics' ->> 'daysSinceLastData')::integer],
                ARRAY[(stored -> 'previous' ->> 'aoerScore')::numeric],
                ARRAY[(stored -> 'previous' ->> 'visibilityRisk')::numeric], '{}'::uuid[]);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'could not raise alerts for tenant %: %', tenant_uuid, SQLERRM;
        END;
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
