-- The operator console (DESIGN §15): the job list and detail, retry and cancel, the pause
-- switch, worker heartbeats, throughput and latency. Row Level Security limits every read
-- and write here to a scoped caller's own tenants.

-- name: list_jobs
-- Newest first, keyset-paged: every query below starts strictly after the cursor
-- (created_at, id) -- the first page passes one past every row -- so a page at any depth is
-- a range scan of an index in the list's order (aoer_queue_console_*_idx). The leading filter
-- picks the statement and its index (store/console.py); the others are checked on its rows.
-- Each row's tenant name is one primary-key probe.
--
-- Every job, or those at `low`: no one index holds them all (migration 0019), so this reads
-- one page of each state and keeps the newest: waiting jobs from their partial index,
-- finished ones from theirs, and the jobs in flight -- the batches workers hold, a few
-- thousand at most -- from the lease index, sorted.
SELECT q.id, q.tenant_id, (SELECT t.name FROM tenants t WHERE t.id = q.tenant_id) AS tenant_name,
       q.priority, q.status, q.retry_count, q.max_retries, q.scheduled_at, q.started_at,
       q.completed_at, q.error_message, q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM (
    (SELECT * FROM aoer_queue
     WHERE status = 'queued' AND retry_count >= 0  -- the waiting-jobs index's predicate (0023)
       AND (created_at, id) < (%(before_at)s, %(before_id)s)
       AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
     ORDER BY created_at DESC, id DESC
     LIMIT %(limit)s)
    UNION ALL
    (SELECT * FROM aoer_queue
     WHERE status = 'processing'
       AND (created_at, id) < (%(before_at)s, %(before_id)s)
       AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
     ORDER BY created_at DESC, id DESC
     LIMIT %(limit)s)
    UNION ALL
    (SELECT * FROM aoer_queue
     WHERE status IN ('completed', 'failed')
       AND (created_at, id) < (%(before_at)s, %(before_id)s)
       AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
     ORDER BY created_at DESC, id DESC
     LIMIT %(limit)s)
) q
ORDER BY q.created_at DESC, q.id DESC
LIMIT %(limit)s;

-- name: list_jobs_completed
-- Completed jobs, from the finished jobs' partial index (`completed` implies its predicate;
-- failed jobs are rare in it).
SELECT q.id, q.tenant_id, (SELECT t.name FROM tenants t WHERE t.id = q.tenant_id) AS tenant_name,
       q.priority, q.status, q.retry_count, q.max_retries, q.scheduled_at, q.started_at,
       q.completed_at, q.error_message, q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM (
    SELECT * FROM aoer_queue
    WHERE status = 'completed'
      AND (created_at, id) < (%(before_at)s, %(before_id)s)
      AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) q
ORDER BY q.created_at DESC, q.id DESC;

-- name: list_jobs_processing
-- Jobs in flight: the lease index holds them (a few thousand at most), sorted here.
SELECT q.id, q.tenant_id, (SELECT t.name FROM tenants t WHERE t.id = q.tenant_id) AS tenant_name,
       q.priority, q.status, q.retry_count, q.max_retries, q.scheduled_at, q.started_at,
       q.completed_at, q.error_message, q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM (
    SELECT * FROM aoer_queue
    WHERE status = 'processing'
      AND (created_at, id) < (%(before_at)s, %(before_id)s)
      AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) q
ORDER BY q.created_at DESC, q.id DESC;

-- name: list_jobs_failed
-- Failed jobs: the partial index's own predicate, written out so every plan can use it.
SELECT q.id, q.tenant_id, (SELECT t.name FROM tenants t WHERE t.id = q.tenant_id) AS tenant_name,
       q.priority, q.status, q.retry_count, q.max_retries, q.scheduled_at, q.started_at,
       q.completed_at, q.error_message, q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM (
    SELECT * FROM aoer_queue
    WHERE status = 'failed'
      AND (created_at, id) < (%(before_at)s, %(before_id)s)
      AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) q
ORDER BY q.created_at DESC, q.id DESC;

-- name: list_jobs_queued
-- Waiting jobs: the partial index's own predicate, written out so every plan can use it
-- (`retry_count >= 0` always holds; only statements that state it may read that index: 0023).
SELECT q.id, q.tenant_id, (SELECT t.name FROM tenants t WHERE t.id = q.tenant_id) AS tenant_name,
       q.priority, q.status, q.retry_count, q.max_retries, q.scheduled_at, q.started_at,
       q.completed_at, q.error_message, q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM (
    SELECT * FROM aoer_queue
    WHERE status = 'queued' AND retry_count >= 0
      AND (created_at, id) < (%(before_at)s, %(before_id)s)
      AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) q
ORDER BY q.created_at DESC, q.id DESC;

-- name: list_jobs_by_priority
SELECT q.id, q.tenant_id, (SELECT t.name FROM tenants t WHERE t.id = q.tenant_id) AS tenant_name,
       q.priority, q.status, q.retry_count, q.max_retries, q.scheduled_at, q.started_at,
       q.completed_at, q.error_message, q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM (
    SELECT * FROM aoer_queue
    WHERE priority = %(priority)s::text
      AND priority <> 'low'  -- the partial index's predicate: `low` is read per state
      AND (created_at, id) < (%(before_at)s, %(before_id)s)
      AND (%(status)s::text IS NULL OR status = %(status)s::text)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) q
ORDER BY q.created_at DESC, q.id DESC;

-- name: list_jobs_by_tenant
SELECT q.id, q.tenant_id, (SELECT t.name FROM tenants t WHERE t.id = q.tenant_id) AS tenant_name,
       q.priority, q.status, q.retry_count, q.max_retries, q.scheduled_at, q.started_at,
       q.completed_at, q.error_message, q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM (
    SELECT * FROM aoer_queue
    WHERE tenant_id = %(tenant_id)s::uuid
      AND (created_at, id) < (%(before_at)s, %(before_id)s)
      AND (%(status)s::text IS NULL OR status = %(status)s::text)
      AND (%(priority)s::text IS NULL OR priority = %(priority)s::text)
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
) q
ORDER BY q.created_at DESC, q.id DESC;

-- name: get_job
-- One job with its tenant's name; no row when it does not exist or the caller may not see
-- it (Row Level Security).
SELECT q.id, q.tenant_id, t.name AS tenant_name, q.priority, q.status, q.retry_count,
       q.max_retries, q.scheduled_at, q.started_at, q.completed_at, q.error_message,
       q.locked_by, q.lease_expires_at, q.created_at, q.updated_at
FROM aoer_queue q
JOIN tenants t ON t.id = q.tenant_id
WHERE q.id = %(job_id)s;

-- name: job_tenant
-- The tenant, its organisation and whether it is active, of a job this caller may see,
-- locking the job for the retry or cancel that follows.
SELECT q.tenant_id, t.org_id, t.active, q.status, q.priority
FROM aoer_queue q
JOIN tenants t ON t.id = q.tenant_id
WHERE q.id = %(job_id)s
FOR UPDATE OF q;

-- name: job_attempts
-- A job's failed attempts, oldest first (aoer_failures rows).
SELECT id, retry_count AS attempt, error_message, error_data, created_at
FROM aoer_failures
WHERE job_id = %(job_id)s
ORDER BY created_at, id;

-- name: coalesce_retry
-- A retry of a failed job whose tenant already has a waiting job: that job carries it (one
-- waiting job per tenant), its priority rising to the failed job's, due now, and its attempts
-- reset as a retry's are (a job waiting out a backoff after two failures gets three again).
UPDATE aoer_queue q
   SET priority = CASE WHEN aoer_priority_rank(%(priority)s) > q.priority_rank
                       THEN %(priority)s ELSE q.priority END,
       scheduled_at = least(q.scheduled_at, now()),
       retry_count = 0,
       error_message = NULL,
       updated_at = now()
 WHERE q.tenant_id = %(tenant_id)s AND q.status = 'queued'
RETURNING q.id;

-- name: requeue_failed
-- A failed job back to the queue with its attempts reset, due now.
UPDATE aoer_queue
   SET status = 'queued',
       retry_count = 0,
       scheduled_at = now(),
       started_at = NULL,
       completed_at = NULL,
       error_message = NULL,
       locked_by = NULL,
       lease_expires_at = NULL,
       updated_at = now()
 WHERE id = %(job_id)s AND status = 'failed'
RETURNING id;

-- name: delete_queued_job
-- Cancel: a waiting job is removed (its failure rows stay, their job_id cleared).
DELETE FROM aoer_queue WHERE id = %(job_id)s AND status = 'queued' RETURNING id;

-- name: queue_state
SELECT paused, changed_at, changed_by FROM aoer_queue_state;

-- name: set_paused
-- Pause or resume; the row is created if someone deleted it. Returns whether it changed.
INSERT INTO aoer_queue_state AS s (id, paused, changed_at, changed_by)
VALUES (true, %(paused)s, now(), %(actor)s)
ON CONFLICT (id) DO UPDATE
   SET paused = EXCLUDED.paused, changed_at = now(), changed_by = EXCLUDED.changed_by
RETURNING (SELECT o.paused FROM aoer_queue_state o) IS DISTINCT FROM s.paused AS changed;

-- name: worker_heartbeat
-- A worker says it is alive (registering itself the first time) and learns whether the queue
-- is paused; its row records that answer, so the console shows what each worker knows. It
-- also learns how many workers are alive (itself included: the count's snapshot predates its
-- own row) and whether the database runs on its host (a Unix socket, or the same address at
-- both ends), from which it sizes its batch slots (worker/slots.py). A worker registering
-- tells the others at commit, so they resize at once instead of at their next heartbeat.
WITH beat AS (
    INSERT INTO aoer_workers AS w (id, host, pid, started_at, last_heartbeat_at, jobs_in_hand,
                                   paused)
    VALUES (%(worker_id)s, %(host)s, %(pid)s, %(started_at)s, now(), %(jobs_in_hand)s,
            coalesce((SELECT paused FROM aoer_queue_state), false))
    ON CONFLICT (id) DO UPDATE
       SET last_heartbeat_at = now(), jobs_in_hand = EXCLUDED.jobs_in_hand,
           paused = EXCLUDED.paused
    RETURNING w.paused, w.xmax = 0 AS registered
)
SELECT beat.paused,
       1 + (SELECT count(*) FROM aoer_workers
            WHERE id <> %(worker_id)s
              AND last_heartbeat_at > now() - make_interval(secs => %(stale_s)s))::integer
           AS live_workers,
       coalesce(inet_server_addr() = inet_client_addr(), true) AS database_here,
       CASE WHEN beat.registered THEN pg_notify(%(channel)s, 'workers') END IS NOT NULL
           AS announced
FROM beat;

-- name: worker_gone
-- A clean exit: the worker's row goes, and the others hear it (they may take more slots).
WITH gone AS (DELETE FROM aoer_workers WHERE id = %(worker_id)s RETURNING id)
SELECT pg_notify(%(channel)s, 'workers') FROM gone;

-- name: list_workers
-- Every worker row, live ones first; `alive`: heard from within the stale threshold.
SELECT id, host, pid, started_at, last_heartbeat_at, jobs_in_hand, paused,
       last_heartbeat_at > now() - make_interval(secs => %(stale_s)s) AS alive
FROM aoer_workers
ORDER BY alive DESC, started_at, id;

-- name: delete_gone_workers
-- Retention: rows of workers not heard from for a long time.
DELETE FROM aoer_workers
WHERE last_heartbeat_at < now() - make_interval(secs => %(gone_s)s);

-- name: throughput_per_minute
-- Jobs completed per minute over the last `hours` hours (minutes with none are left out).
SELECT date_trunc('minute', completed_at) AS minute, count(*)::integer AS jobs
FROM aoer_queue
WHERE status = 'completed' AND completed_at > now() - make_interval(hours => %(hours)s)
GROUP BY 1
ORDER BY 1;

-- name: latency_per_hour
-- Per hour of completion over the last `hours` hours: how long jobs waited once due (claim
-- minus scheduled_at) and ran (completion minus claim), 50th and 95th percentiles, seconds.
SELECT date_trunc('hour', completed_at) AS hour,
       count(*)::integer AS jobs,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s) AS wait_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_s) AS wait_p95_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY run_s) AS run_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY run_s) AS run_p95_s
FROM (
    SELECT completed_at,
           greatest(extract(epoch FROM started_at - scheduled_at), 0)::float8 AS wait_s,
           greatest(extract(epoch FROM completed_at - started_at), 0)::float8 AS run_s
    FROM aoer_queue
    WHERE status = 'completed' AND started_at IS NOT NULL
      AND completed_at > now() - make_interval(hours => %(hours)s)
) finished
GROUP BY 1
ORDER BY 1;

-- name: lock_wait_row
-- The dealership whose row a statement waited on, from the `(page,item)` tuple PostgreSQL's
-- lock-timeout CONTEXT names (a TID scan: one page read). The row may have moved since.
SELECT t.id AS tenant_id, t.name AS tenant_name
FROM tenants t
WHERE t.id = (
    SELECT tenant_id FROM aoer_summary
     WHERE %(relation)s = 'aoer_summary' AND ctid = %(tid)s::tid
    UNION ALL
    SELECT tenant_id FROM aoer_queue
     WHERE %(relation)s = 'aoer_queue' AND ctid = %(tid)s::tid
    UNION ALL
    SELECT id FROM tenants
     WHERE %(relation)s = 'tenants' AND ctid = %(tid)s::tid
    LIMIT 1
);

-- name: lock_holders
-- Other sessions holding a lock on `relation` that lets them write its rows, oldest
-- transaction first: among them, whoever holds the row a statement waited on. (Without
-- pg_read_all_stats a role sees only its own sessions' state and transaction start.) A
-- session holding the relation in two modes (an UPDATE's and a FOR UPDATE's) is one holder.
SELECT a.pid, nullif(a.application_name, '') AS application, a.state,
       extract(epoch FROM now() - a.xact_start)::float8 AS transaction_s
FROM pg_stat_activity a
WHERE a.pid IN (SELECT l.pid FROM pg_locks l
                WHERE l.locktype = 'relation' AND l.granted
                  AND l.relation = to_regclass(%(relation)s)
                  AND l.mode <> 'AccessShareLock')
  AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
ORDER BY a.xact_start NULLS LAST, a.pid
LIMIT %(limit)s;
