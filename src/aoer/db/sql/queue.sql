-- name: enqueue_tenants
-- Queue the given active tenants. A tenant that already has a waiting job keeps that job
-- (coalesced): its priority rises to the higher of the two, its scheduled_at moves earlier.
-- Unknown and inactive tenants are left out of the result.
INSERT INTO aoer_queue AS q (tenant_id, priority, max_retries, scheduled_at)
SELECT t.id, %(priority)s, %(max_retries)s, now()
FROM tenants t
WHERE t.id = ANY (%(tenant_ids)s::uuid[]) AND t.active
ON CONFLICT (tenant_id) WHERE status = 'queued' DO UPDATE
   SET priority = CASE WHEN aoer_priority_rank(EXCLUDED.priority) > q.priority_rank
                       THEN EXCLUDED.priority ELSE q.priority END,
       scheduled_at = least(q.scheduled_at, EXCLUDED.scheduled_at),
       updated_at = now()
RETURNING q.id, q.tenant_id, q.priority, q.status, q.xmax::text <> '0' AS coalesced;

-- name: enqueue_all_active
-- The cron tick: every active tenant, one set-based statement, coalescing like enqueue.
WITH queued AS (
    INSERT INTO aoer_queue AS q (tenant_id, priority, max_retries, scheduled_at)
    SELECT t.id, %(priority)s, %(max_retries)s, now()
    FROM tenants t
    WHERE t.active
    ON CONFLICT (tenant_id) WHERE status = 'queued' DO UPDATE
       SET priority = CASE WHEN aoer_priority_rank(EXCLUDED.priority) > q.priority_rank
                           THEN EXCLUDED.priority ELSE q.priority END,
           scheduled_at = least(q.scheduled_at, EXCLUDED.scheduled_at),
           updated_at = now()
    RETURNING 1
)
SELECT count(*)::integer AS queued FROM queued;

-- name: notify_queue
-- Wake idle workers; delivered when the enqueuing transaction commits.
SELECT pg_notify('aoer_queue', %(payload)s);

-- name: tenant_state
SELECT id, active FROM tenants WHERE id = %(tenant_id)s;

-- name: claim_jobs
-- Take up to `limit` due jobs in priority order, then age. SKIP LOCKED lets workers claim
-- side by side without waiting on each other; the lease says how long the claim holds.
-- When the most urgent due job is `urgent`, the batch is capped at 100 jobs: someone waits
-- for it, and a small batch commits in milliseconds instead of carrying a full batch of
-- lower-priority work along (bench/README.md: urgent latency behind a backlog).
WITH head AS (
    SELECT priority_rank
    FROM aoer_queue
    WHERE status = 'queued' AND scheduled_at <= now()
    ORDER BY priority_rank DESC, scheduled_at
    LIMIT 1
),
next AS (
    SELECT id
    FROM aoer_queue
    WHERE status = 'queued' AND scheduled_at <= now()
    ORDER BY priority_rank DESC, scheduled_at
    LIMIT CASE WHEN (SELECT priority_rank FROM head) = aoer_priority_rank('urgent')
               THEN least(%(limit)s, 100)
               ELSE %(limit)s END
    FOR UPDATE SKIP LOCKED
)
UPDATE aoer_queue q
   SET status = 'processing',
       started_at = now(),
       locked_by = %(worker_id)s,
       lease_expires_at = now() + make_interval(secs => %(lease_s)s),
       updated_at = now()
-- = ANY(ARRAY(...)): primary-key lookups for the claimed rows, never a scan of the queue.
WHERE q.id = ANY (ARRAY(SELECT id FROM next))
RETURNING q.id, q.tenant_id, q.priority, q.retry_count, q.max_retries, q.created_at;

-- name: complete_jobs
-- Finish the jobs this worker still holds: mark them completed, recompute and upsert their
-- tenants' summaries set-based and add one aoer_recompute event per job -- one statement.
-- Jobs whose lease was lost to another worker are left alone.
--
-- Statistics never see a job in flight for this worker (its id is new each start, and
-- autovacuum's ANALYZE runs between drains), so `status = 'processing' AND locked_by = ...`
-- on aoer_queue is estimated at one row. Joined to the held ids, that estimate let the
-- planner scan every job in flight once per held id (a nested loop over the lease index):
-- 1,000 x 4,000 comparisons, 1-5 s a batch instead of ~0.1 s (bench/README.md, issue 17).
-- So the held rows are found by primary key alone, locked in id order (the order
-- renew_leases locks in too), and the guard is a column of theirs, not a filter the
-- planner could drive the join with: every plan left is linear in the batch.
WITH held AS MATERIALIZED (
    SELECT id, status = 'processing' AND locked_by = %(worker_id)s AS ours
    FROM aoer_queue
    WHERE id = ANY (%(job_ids)s::uuid[])
    ORDER BY id
    FOR UPDATE
),
done AS (
    UPDATE aoer_queue q
       SET status = 'completed',
           completed_at = now(),
           lease_expires_at = NULL,
           error_message = NULL,
           updated_at = now()
      FROM held
     WHERE q.id = held.id AND held.ours
    RETURNING q.id, q.tenant_id, q.priority, q.created_at
),
scores AS (
    SELECT * FROM aoer_store_scores(ARRAY(SELECT tenant_id FROM done))
),
events AS (
    INSERT INTO metrics_events (tenant_id, event_type, event_data)
    SELECT d.tenant_id, 'aoer_recompute',
           jsonb_build_object('jobId', d.id,
                              'priority', d.priority,
                              'aoerScore', sc.aoer_score,
                              'visibilityRisk', sc.visibility_risk,
                              'metrics', sc.metrics,
                              'workerId', %(worker_id)s::text)
    FROM done d
    JOIN scores sc ON sc.tenant_id = d.tenant_id
    RETURNING 1
)
SELECT d.id, d.tenant_id, d.priority, sc.aoer_score, sc.visibility_risk,
       (extract(epoch FROM clock_timestamp() - d.created_at) * 1000)::float8 AS latency_ms
FROM done d
JOIN scores sc ON sc.tenant_id = d.tenant_id;

-- name: notify_summaries
-- Tell every API process which summaries changed, in payloads under NOTIFY's 8000-byte limit.
SELECT pg_notify('aoer_summary_updated', string_agg(tenant_id::text, ','))
FROM (
    SELECT tenant_id, (row_number() OVER () - 1) / 150 AS chunk
    FROM unnest(%(tenant_ids)s::uuid[]) AS t (tenant_id)
) chunks
GROUP BY chunk;

-- name: fail_jobs
-- Record a failed attempt for each job: one aoer_failures row each; the job goes back to
-- `queued` after its backoff, or to `failed` once its retries are spent. When the tenant
-- already has a waiting job, that job carries the retry and this one is closed as failed.
WITH input AS (
    SELECT *
    FROM unnest(%(job_ids)s::uuid[], %(errors)s::text[], %(delays_s)s::float8[])
         AS i (job_id, error, delay_s)
),
held AS (
    SELECT q.id, q.tenant_id, q.retry_count + 1 AS attempts, q.max_retries, i.error, i.delay_s,
           EXISTS (SELECT 1 FROM aoer_queue o
                   WHERE o.tenant_id = q.tenant_id AND o.status = 'queued') AS has_waiting
    FROM aoer_queue q
    JOIN input i ON i.job_id = q.id
    WHERE q.status = 'processing' AND q.locked_by = %(worker_id)s
),
decided AS (
    SELECT held.*, attempts < max_retries AND NOT has_waiting AS retry FROM held
),
updated AS (
    UPDATE aoer_queue q
       SET retry_count = d.attempts,
           status = CASE WHEN d.retry THEN 'queued' ELSE 'failed' END,
           scheduled_at = CASE WHEN d.retry THEN now() + make_interval(secs => d.delay_s)
                               ELSE q.scheduled_at END,
           completed_at = CASE WHEN d.retry THEN NULL ELSE now() END,
           error_message = CASE WHEN d.attempts < d.max_retries AND d.has_waiting
                                THEN d.error || ' (retry carried by the waiting job)'
                                ELSE d.error END,
           lease_expires_at = NULL,
           locked_by = CASE WHEN d.retry THEN NULL ELSE q.locked_by END,
           updated_at = now()
    FROM decided d
    WHERE q.id = d.id
    RETURNING q.id, q.tenant_id, q.status, q.retry_count, q.scheduled_at, q.error_message
),
recorded AS (
    INSERT INTO aoer_failures (tenant_id, job_id, error_message, error_data, retry_count)
    SELECT d.tenant_id, d.id, d.error,
           jsonb_build_object('workerId', %(worker_id)s::text, 'willRetry', d.retry,
                              'maxRetries', d.max_retries),
           d.attempts
    FROM decided d
    RETURNING 1
)
SELECT * FROM updated;

-- name: renew_leases
-- Extend the leases of the given jobs this worker still holds; returns the ids still its own
-- (processing or completed under its name). Rows are locked in id order, as complete_jobs
-- locks them, and SKIP LOCKED: a job whose batch is completing right now stays locked by
-- that batch until it commits, and waiting for it held up the worker's other batches behind
-- the rows this renewal had already locked, and could deadlock with them (bench/README.md,
-- issue 17). Such a job needs no renewal: it is done when that batch commits.
-- Found by primary key alone, like complete_jobs, so no statistics can make this quadratic.
WITH held AS MATERIALIZED (
    SELECT id,
           status = 'processing' AND locked_by = %(worker_id)s AS ours,
           status IN ('processing', 'completed') AND locked_by = %(worker_id)s AS kept
    FROM aoer_queue
    WHERE id = ANY (%(job_ids)s::uuid[])
    ORDER BY id
    FOR UPDATE SKIP LOCKED
),
renewed AS (
    UPDATE aoer_queue q
       SET lease_expires_at = now() + make_interval(secs => %(lease_s)s)
      FROM held
     WHERE q.id = held.id AND held.ours
)
SELECT id FROM held WHERE kept
UNION ALL
-- Skipped: locked by one of this worker's batches, which is completing them.
(SELECT unnest(%(job_ids)s::uuid[]) EXCEPT SELECT id FROM held);

-- name: reclaim_expired
-- Take back jobs whose worker stopped renewing its lease (it died). The lost attempt counts:
-- a failure row each, then straight back to `queued` (no backoff: the tenant did nothing
-- wrong) or `failed` once retries are spent. One job per tenant may wait, so when a tenant
-- already has a waiting job -- or two expired jobs -- only one is requeued.
WITH locked AS (
    SELECT id
    FROM aoer_queue
    WHERE status = 'processing' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
expired AS (
    SELECT q.id, q.tenant_id, q.locked_by, q.retry_count + 1 AS attempts, q.max_retries,
           row_number() OVER (PARTITION BY q.tenant_id ORDER BY q.priority_rank DESC) AS nth,
           EXISTS (SELECT 1 FROM aoer_queue o
                   WHERE o.tenant_id = q.tenant_id AND o.status = 'queued') AS has_waiting
    FROM aoer_queue q
    JOIN locked USING (id)
),
decided AS (
    SELECT expired.*,
           attempts < max_retries AND nth = 1 AND NOT has_waiting AS retry,
           'lease expired: worker ' || locked_by || ' stopped renewing it' AS error
    FROM expired
),
updated AS (
    UPDATE aoer_queue q
       SET retry_count = d.attempts,
           status = CASE WHEN d.retry THEN 'queued' ELSE 'failed' END,
           scheduled_at = CASE WHEN d.retry THEN now() ELSE q.scheduled_at END,
           completed_at = CASE WHEN d.retry THEN NULL ELSE now() END,
           error_message = d.error,
           locked_by = CASE WHEN d.retry THEN NULL ELSE q.locked_by END,
           lease_expires_at = NULL,
           updated_at = now()
    FROM decided d
    WHERE q.id = d.id
    RETURNING q.id, q.tenant_id, q.status, q.error_message
),
recorded AS (
    INSERT INTO aoer_failures (tenant_id, job_id, error_message, error_data, retry_count)
    SELECT d.tenant_id, d.id, d.error,
           jsonb_build_object('reason', 'lease_expired', 'workerId', d.locked_by,
                              'willRetry', d.retry),
           d.attempts
    FROM decided d
    RETURNING 1
)
SELECT * FROM updated;

-- name: next_due_at
-- When the earliest waiting job becomes due (NULL when nothing waits): the head of each
-- priority in the claim index, so no second index is needed.
SELECT min(head.scheduled_at) AS due_at
FROM (VALUES (1::smallint), (2::smallint), (3::smallint), (4::smallint)) AS p (rank)
CROSS JOIN LATERAL (
    SELECT scheduled_at
    FROM aoer_queue
    WHERE status = 'queued' AND priority_rank = p.rank
    ORDER BY scheduled_at
    LIMIT 1
) head;

-- name: tenant_queue_status
SELECT count(*) FILTER (WHERE status = 'queued')::integer     AS pending,
       count(*) FILTER (WHERE status = 'processing')::integer AS processing,
       count(*) FILTER (WHERE status = 'completed')::integer  AS completed,
       count(*) FILTER (WHERE status = 'failed')::integer     AS failed
FROM aoer_queue
WHERE tenant_id = %(tenant_id)s;

-- name: queue_depth
-- Jobs by status and priority, for `aoer status`, the dashboard and /metrics.
SELECT status, priority, count(*)::integer AS jobs,
       extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_s
FROM aoer_queue
WHERE status IN ('queued', 'processing')
GROUP BY status, priority
UNION ALL
SELECT status, priority, count(*)::integer, NULL
FROM aoer_queue
WHERE status IN ('completed', 'failed')
GROUP BY status, priority;

-- name: throughput
-- Jobs finished over the last minute and hour.
SELECT count(*) FILTER (WHERE completed_at > now() - interval '1 minute')::integer AS last_minute,
       count(*)::integer AS last_hour
FROM aoer_queue
WHERE status = 'completed' AND completed_at > now() - interval '1 hour';

-- name: delete_finished_jobs
-- Retention: one batch of old finished jobs.
DELETE FROM aoer_queue
WHERE id IN (SELECT id FROM aoer_queue
             WHERE status IN ('completed', 'failed')
               AND completed_at < now() - make_interval(days => %(days)s)
             LIMIT %(limit)s);

-- name: delete_old_failures
DELETE FROM aoer_failures
WHERE id IN (SELECT id FROM aoer_failures
             WHERE created_at < now() - make_interval(days => %(days)s)
             LIMIT %(limit)s);

-- name: delete_old_events
DELETE FROM metrics_events
WHERE id IN (SELECT id FROM metrics_events
             WHERE created_at < now() - make_interval(days => %(days)s)
             LIMIT %(limit)s);
