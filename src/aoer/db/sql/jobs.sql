-- name: enqueue_tenants
-- Queue the given active tenants. A tenant that already has a waiting job keeps that job
-- (coalesced): its priority rises to the higher of the two, its scheduled_at moves earlier.
-- Unknown and inactive tenants are left out of the result.
-- A waiting job the enqueue would not change (already at this priority or higher, and due)
-- is answered as it is, from the statement's snapshot: nothing written, and no wait on a
-- lock another transaction holds on it. The upsert waited there for a claim taking that job
-- (until the claim committed, then queued a second job) and for a concurrent enqueue of the
-- same tenant; and a statement that writes nothing commits without waiting for the WAL.
-- Answering the job a claim is taking is what the upsert's coalescing means: the tenant is
-- recomputed after this request, by that job (bench/README.md, issue 16: the mixed row).
WITH asked AS MATERIALIZED (
    SELECT t.id
    FROM tenants t
    WHERE t.id = ANY (%(tenant_ids)s::uuid[]) AND t.active
),
settled AS MATERIALIZED (
    SELECT q.id, q.tenant_id, q.priority, q.status
    FROM asked a
    -- Each tenant's waiting job by the one-per-tenant index (OFFSET 0: the conditions below
    -- stay out here, so the claim index, which they would qualify, is no way to find it: 0023).
    CROSS JOIN LATERAL (
        SELECT id, tenant_id, priority, status, priority_rank, scheduled_at
        FROM aoer_queue
        WHERE tenant_id = a.id AND status = 'queued'
        OFFSET 0
    ) q
    WHERE q.priority_rank >= aoer_priority_rank(%(priority)s)
      AND q.scheduled_at <= now()
),
upserted AS (
    INSERT INTO aoer_queue AS q (tenant_id, priority, max_retries, scheduled_at)
    SELECT a.id, %(priority)s, %(max_retries)s, now()
    FROM asked a
    WHERE NOT EXISTS (SELECT 1 FROM settled s WHERE s.tenant_id = a.id)
    ORDER BY a.id
    ON CONFLICT (tenant_id) WHERE status = 'queued' DO UPDATE
       SET priority = CASE WHEN aoer_priority_rank(EXCLUDED.priority) > q.priority_rank
                           THEN EXCLUDED.priority ELSE q.priority END,
           scheduled_at = least(q.scheduled_at, EXCLUDED.scheduled_at),
           updated_at = now()
    RETURNING q.id, q.tenant_id, q.priority, q.status, q.xmax::text <> '0' AS coalesced
),
-- With `notify`, the workers are woken by this statement when it wrote a job: its NOTIFY is
-- sent as its transaction commits (the caller's, inside one). An urgent enqueue outside a transaction is
-- then one round trip, not four (BEGIN, the upsert, the NOTIFY, COMMIT), each of which
-- waited for a turn of a busy API's event loop.
woke AS (
    SELECT pg_notify(%(channel)s, %(priority)s)
    WHERE %(notify)s AND EXISTS (SELECT 1 FROM upserted)
)
SELECT s.id, s.tenant_id, s.priority, s.status, true AS coalesced
FROM settled s
UNION ALL
SELECT u.id, u.tenant_id, u.priority, u.status, u.coalesced
FROM upserted u
-- A CTE nobody reads is never run: this one-row count runs `woke` once.
CROSS JOIN (SELECT count(*) FROM woke) AS w;

-- name: enqueue_all_active
-- The cron tick: every active tenant, set-based, coalescing like enqueue. It never waits on
-- a row another transaction holds: a waiting job that a worker is claiming right now is
-- left alone (that tenant is being recomputed anyway), so a hung worker cannot stall the
-- tick. Waiting jobs are coalesced under SKIP LOCKED; tenants with no waiting job (as of
-- the statement's snapshot) get one.
WITH waiting AS (
    SELECT q.id
    FROM aoer_queue q
    JOIN tenants t ON t.id = q.tenant_id AND t.active
    WHERE q.status = 'queued'
    FOR UPDATE OF q SKIP LOCKED
),
coalesced AS (
    UPDATE aoer_queue q
       SET priority = CASE WHEN aoer_priority_rank(%(priority)s) > q.priority_rank
                           THEN %(priority)s ELSE q.priority END,
           scheduled_at = least(q.scheduled_at, now()),
           updated_at = now()
      FROM waiting w
     WHERE q.id = w.id
    RETURNING 1
),
unqueued AS MATERIALIZED (
    -- Sorted, so this whole anti-join runs before the first insert below: the statement
    -- never re-reads its own new rows. (Right after an ANALYZE of an empty queue the planner
    -- picks a nested loop over a sequential scan of aoer_queue; interleaved with the inserts
    -- that was quadratic: minutes at 100,000 tenants.) Sorted by id, the inserts also take
    -- their index locks in one order.
    SELECT t.id
    FROM tenants t
    WHERE t.active
      AND NOT EXISTS (SELECT 1 FROM aoer_queue o
                      WHERE o.tenant_id = t.id AND o.status = 'queued')
    ORDER BY t.id
),
inserted AS (
    INSERT INTO aoer_queue (tenant_id, priority, max_retries, scheduled_at)
    SELECT id, %(priority)s, %(max_retries)s, now()
    FROM unqueued
    ON CONFLICT (tenant_id) WHERE status = 'queued' DO NOTHING
    RETURNING 1
)
SELECT ((SELECT count(*) FROM coalesced) + (SELECT count(*) FROM inserted))::integer AS queued;

-- name: enqueue_active_chunk
-- One chunk of the fleet tick: the next `limit` active tenants by id after `after` (from the
-- first when `first`), queued like enqueue_all_active. Returns the last tenant id of the
-- chunk (NULL when there was none), how many tenants it covered and how many it queued.
WITH chunk AS MATERIALIZED (
    SELECT t.id
    FROM tenants t
    WHERE t.active
      AND t.id >= %(after)s::uuid
      AND (%(first)s OR t.id <> %(after)s::uuid)
    ORDER BY t.id
    LIMIT %(limit)s
),
-- The chunk's last tenant: every read of the queue below stays inside the chunk's range
-- (`after` to it) of the one-waiting-job-per-tenant index (the only index of waiting jobs a
-- read by tenant can use: migration 0023). Matched to the chunk alone, the planner read
-- every waiting job of the fleet for each chunk -- whenever the queue's statistics were
-- older than the tick (they always are: the tick is what fills it), a hash or a sort of all
-- the jobs the earlier chunks had queued and the workers had not yet claimed: quadratic in
-- the fleet (at 1,000,000 tenants, 50 chunks each reading up to ~700,000 waiting jobs;
-- bench/README.md, issue 16).
span AS MATERIALIZED (
    SELECT (SELECT id FROM chunk ORDER BY id DESC LIMIT 1) AS last_id
),
waiting AS (
    SELECT q.id
    FROM aoer_queue q
    JOIN chunk c ON c.id = q.tenant_id
    WHERE q.status = 'queued'
      AND q.tenant_id BETWEEN %(after)s::uuid AND (SELECT last_id FROM span)
    FOR UPDATE OF q SKIP LOCKED
),
coalesced AS (
    UPDATE aoer_queue q
       SET priority = CASE WHEN aoer_priority_rank(%(priority)s) > q.priority_rank
                           THEN %(priority)s ELSE q.priority END,
           scheduled_at = least(q.scheduled_at, now()),
           updated_at = now()
      FROM waiting w
     WHERE q.id = w.id
    RETURNING 1
),
unqueued AS MATERIALIZED (
    -- Sorted, so the anti-join runs in full before the inserts (see enqueue_all_active).
    SELECT c.id
    FROM chunk c
    WHERE NOT EXISTS (SELECT 1 FROM aoer_queue o
                      WHERE o.tenant_id = c.id AND o.status = 'queued'
                        AND o.tenant_id BETWEEN %(after)s::uuid AND (SELECT last_id FROM span))
    ORDER BY c.id
),
inserted AS (
    INSERT INTO aoer_queue (tenant_id, priority, max_retries, scheduled_at)
    SELECT id, %(priority)s, %(max_retries)s, now()
    FROM unqueued
    ON CONFLICT (tenant_id) WHERE status = 'queued' DO NOTHING
    RETURNING 1
)
SELECT (SELECT last_id FROM span) AS last_id,
       (SELECT count(*) FROM chunk)::integer AS tenants,
       ((SELECT count(*) FROM coalesced) + (SELECT count(*) FROM inserted))::integer AS queued;

-- name: notify_queue
-- Wake idle workers; delivered when the enqueuing transaction commits.
SELECT pg_notify(%(channel)s, %(payload)s);

-- name: tenant_state
-- Whether the tenant is active; no row when it does not exist.
SELECT active FROM tenants WHERE id = %(tenant_id)s;

-- name: claim_jobs
-- Take up to `limit` due jobs in priority order, then age. SKIP LOCKED lets workers claim
-- side by side without waiting on each other; the lease says how long the claim holds.
-- When the most urgent due job is `urgent`, the batch is capped at 100 jobs: someone waits
-- for it, and a small batch commits in milliseconds instead of carrying a full batch of
-- lower-priority work along (bench/README.md: urgent latency behind a backlog).
-- Whether the head is urgent is asked of the urgent part of the claim index alone
-- (priority_rank = 4): reading the head in full walked every entry a drain had already
-- claimed and no vacuum had yet removed, thousands a claim late in a 100,000-job drain.
-- While the queue is paused (POST /api/queue/pause) it claims nothing.
-- `min_priority` leaves out jobs of a lower priority: a worker's urgent lane claims 'urgent'
-- only, reading the urgent part of the claim index alone (worker/loop.py).
WITH next AS (
    SELECT id
    FROM aoer_queue
    WHERE status = 'queued' AND scheduled_at <= now()
      AND priority_rank >= aoer_priority_rank(%(min_priority)s)
      -- Paused (aoer_queue_state): nothing is claimed, whatever woke the worker.
      AND NOT EXISTS (SELECT 1 FROM aoer_queue_state WHERE paused)
    ORDER BY priority_rank DESC, scheduled_at
    LIMIT CASE WHEN EXISTS (SELECT 1 FROM aoer_queue
                            WHERE status = 'queued'
                              AND priority_rank = aoer_priority_rank('urgent')
                              AND scheduled_at <= now())
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
-- The ids travel in binary (`%(job_ids)b`): the worker encodes 1,000 UUIDs in 0.2 ms instead
-- of 1.3 ms as text (the same for the other id arrays of a batch).
WITH held AS MATERIALIZED (
    SELECT q.id, q.status = 'processing' AND q.locked_by = %(worker_id)s AS ours
    FROM (SELECT id FROM unnest(%(job_ids)b::uuid[]) AS asked (id) ORDER BY id) AS asked
    -- One primary-key probe per held job, in id order: never a scan of the queue.
    CROSS JOIN LATERAL (
        SELECT id, status, locked_by FROM aoer_queue WHERE id = asked.id FOR UPDATE
    ) q
),
done AS (
    UPDATE aoer_queue q
       SET status = 'completed',
           completed_at = now(),
           lease_expires_at = NULL,
           error_message = NULL,
           updated_at = now()
     -- = ANY(ARRAY(...)): a primary-key lookup per held row, never a scan of the queue.
     WHERE q.id = ANY (ARRAY(SELECT id FROM held WHERE ours))
    RETURNING q.id, q.tenant_id, q.priority, q.created_at
),
scores AS (
    SELECT * FROM aoer_store_scores(ARRAY(SELECT tenant_id FROM done))
),
events AS (
    INSERT INTO metrics_events (tenant_id, event_type, event_data)
    SELECT d.tenant_id, %(event_type)s,
           jsonb_build_object('jobId', d.id,
                              'priority', d.priority,
                              'aoerScore', sc.aoer_score,
                              'visibilityRisk', sc.visibility_risk,
                              'metrics', sc.metrics,
                              'previous', sc.previous,
                              'change', sc.change,
                              'workerId', %(worker_id)s::text)
    FROM done d
    JOIN scores sc ON sc.tenant_id = d.tenant_id
    RETURNING 1
)
SELECT d.id, d.tenant_id, d.priority, sc.aoer_score, sc.visibility_risk,
       (extract(epoch FROM clock_timestamp() - d.created_at) * 1000)::float8 AS latency_ms,
       -- What the alerts of this batch compare (queue.raise_alerts): the summary replaced.
       (sc.previous ->> 'aoerScore')::numeric AS previous_score,
       (sc.previous ->> 'visibilityRisk')::numeric AS previous_risk,
       (sc.metrics ->> 'daysSinceLastData')::integer AS days_since_last_data
FROM done d
JOIN scores sc ON sc.tenant_id = d.tenant_id;

-- name: notify_summaries
-- Tell every API process which summaries changed, in payloads under NOTIFY's 8000-byte limit.
SELECT pg_notify(%(channel)s, string_agg(tenant_id::text, ','))
FROM (
    SELECT tenant_id, (row_number() OVER () - 1) / 150 AS chunk
    FROM unnest(%(tenant_ids)b::uuid[]) AS t (tenant_id)
) chunks
GROUP BY chunk;

-- name: fail_jobs
-- Record a failed attempt for each job: one aoer_failures row each; the job goes back to
-- `queued` after its backoff, or to `failed` once its retries are spent. When the tenant
-- already has a waiting job, that job carries the retry and this one is closed as failed;
-- a tenant deactivated meanwhile is not retried either (its waiting job was cancelled).
WITH input AS (
    SELECT *
    FROM unnest(%(job_ids)s::uuid[], %(errors)s::text[], %(delays_s)s::float8[])
         AS i (job_id, error, delay_s)
),
held AS (
    SELECT q.id, q.tenant_id, q.retry_count + 1 AS attempts, q.max_retries, i.error, i.delay_s,
           EXISTS (SELECT 1 FROM aoer_queue o
                   WHERE o.tenant_id = q.tenant_id AND o.status = 'queued') AS has_waiting,
           coalesce((SELECT t.active FROM tenants t WHERE t.id = q.tenant_id), false)
               AS tenant_active
    FROM aoer_queue q
    JOIN input i ON i.job_id = q.id
    WHERE q.status = 'processing' AND q.locked_by = %(worker_id)s
),
decided AS (
    SELECT held.*, attempts < max_retries AND NOT has_waiting AND tenant_active AS retry
    FROM held
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
                                WHEN d.attempts < d.max_retries AND NOT d.tenant_active
                                THEN d.error || ' (not retried: the tenant is inactive)'
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
-- Extend the leases this worker holds. Rows are found by primary key alone (no statistics
-- can make this quadratic) and locked in id order, as complete_jobs locks them, under SKIP
-- LOCKED: renewal never waits on a row, so it can neither stall behind nor deadlock with this
-- worker's own batch that is completing those rows right now (bench/README.md, issue 17).
-- Per asked job: `renewed`, or neither (its batch holds the row, or this worker finished it),
-- or `lost`: another worker took it back -- it is processing under another worker, or it was
-- reclaimed (its lease expired) and is no longer processing.
WITH held AS MATERIALIZED (
    SELECT q.id, q.status = 'processing' AND q.locked_by = %(worker_id)s AS ours
    FROM (SELECT id FROM unnest(%(job_ids)b::uuid[]) AS asked (id) ORDER BY id) AS asked
    CROSS JOIN LATERAL (
        SELECT id, status, locked_by FROM aoer_queue WHERE id = asked.id FOR UPDATE SKIP LOCKED
    ) q
),
renewed AS (
    UPDATE aoer_queue q
       SET lease_expires_at = now() + make_interval(secs => %(lease_s)s)
     WHERE q.id = ANY (ARRAY(SELECT id FROM held WHERE ours))
    RETURNING q.id
)
SELECT asked.id,
       asked.id IN (SELECT id FROM renewed) AS renewed,
       CASE WHEN q.status = 'processing' THEN q.locked_by IS DISTINCT FROM %(worker_id)s
            ELSE coalesce(q.error_message LIKE 'lease expired:%%', false) END AS lost
FROM unnest(%(job_ids)b::uuid[]) AS asked (id)
-- One primary-key probe per asked job (a plain read: it never waits on the batch's locks).
CROSS JOIN LATERAL (
    SELECT status, locked_by, error_message FROM aoer_queue WHERE id = asked.id
) q;

-- name: release_jobs
-- Give back jobs this worker holds but cannot finish for a reason that is not the tenant's
-- (the database kept failing, the worker is stopping): back to `queued` at once, no attempt
-- spent. A job whose tenant meanwhile got a waiting job cannot go back (one waiting job a
-- tenant): it ends instead, no attempt spent, naming why (left to its lease, it ended as
-- "lease expired: worker ... stopped renewing it", an attempt counted against a worker that
-- was alive). Each job, and whether it went back.
WITH held AS (
    SELECT q.id,
           -- A probe per released job (OFFSET 0 keeps it one): as a join, statistics that
           -- count no waiting job made the planner read every waiting job (migration 0023).
           EXISTS (SELECT 1 FROM aoer_queue o
                   WHERE o.tenant_id = q.tenant_id AND o.status = 'queued' OFFSET 0) AS waiting
    FROM aoer_queue q
    WHERE q.id = ANY (%(job_ids)s::uuid[])
      AND q.status = 'processing'
      AND q.locked_by = %(worker_id)s
)
UPDATE aoer_queue q
   SET status = CASE WHEN h.waiting THEN 'failed' ELSE 'queued' END,
       completed_at = CASE WHEN h.waiting THEN now() END,
       error_message = CASE WHEN h.waiting
                            THEN %(reason)s || ' (released: its tenant''s waiting job carries'
                                 ' the recompute)'
                            ELSE q.error_message END,
       locked_by = CASE WHEN h.waiting THEN q.locked_by END,
       started_at = CASE WHEN h.waiting THEN q.started_at END,
       lease_expires_at = NULL,
       updated_at = now()
  FROM held h
 WHERE q.id = h.id
   AND q.status = 'processing'
   AND q.locked_by = %(worker_id)s
RETURNING q.id, NOT h.waiting AS released;

-- name: reclaim_expired
-- Take back jobs whose worker stopped renewing its lease (it died). The lost attempt counts:
-- a failure row each, then straight back to `queued` (no backoff: the tenant did nothing
-- wrong) or `failed` once retries are spent. One job per tenant may wait, so when a tenant
-- already has a waiting job -- or two expired jobs -- only one is requeued.
--
-- A live worker's batch can hold its jobs' rows past their lease: waiting on a row lock
-- (up to the lock timeout, three times before isolation), its own locks keep renewal
-- (SKIP LOCKED) off them. Taken back in a gap between two tries, a healthy tenant lost an
-- attempt to "lease expired" and was recomputed twice. So a job whose worker still
-- heartbeats is left to it, unless its lease is `live_grace_s` past: the bound on a batch
-- that hangs while its process lives.
WITH locked AS (
    SELECT id
    FROM aoer_queue q
    WHERE status = 'processing'
      AND lease_expires_at < now() - make_interval(secs => %(grace_s)s)
      AND (lease_expires_at < now() - make_interval(secs => %(live_grace_s)s)
           OR NOT EXISTS (SELECT 1 FROM aoer_workers w
                          WHERE w.id = q.locked_by
                            AND w.last_heartbeat_at > now() - make_interval(secs => %(stale_s)s)))
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

-- name: queue_statuses
-- Job counts by status for each existing tenant among the given ones (`queued` reported as
-- pending); tenants that do not exist are left out.
SELECT t.id AS tenant_id,
       count(q.id) FILTER (WHERE q.status = 'queued')::integer     AS pending,
       count(q.id) FILTER (WHERE q.status = 'processing')::integer AS processing,
       count(q.id) FILTER (WHERE q.status = 'completed')::integer  AS completed,
       count(q.id) FILTER (WHERE q.status = 'failed')::integer     AS failed
FROM tenants t
LEFT JOIN aoer_queue q ON q.tenant_id = t.id
WHERE t.id = ANY (%(tenant_ids)s::uuid[])
GROUP BY t.id;

-- name: queue_depth
-- Jobs by status and priority, for `aoer status`, the dashboard and /metrics. The oldest age
-- of waiting jobs is how long the longest-waiting *due* one has waited since it came due
-- (NULL when none is due: a retry's backoff is not waiting); of jobs in flight, how long the
-- longest-running one has run. From `created_at` it read 461 s for a job retried a moment
-- ago, and 4 s for one waiting out a minute's backoff.
SELECT status, priority, count(*)::integer AS jobs,
       extract(epoch FROM CASE WHEN status = 'queued'
                               THEN now() - min(scheduled_at) FILTER (WHERE scheduled_at <= now())
                               ELSE now() - min(coalesce(started_at, created_at))
                          END)::float8 AS oldest_age_s
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
