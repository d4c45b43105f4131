-- The operator console (DESIGN §15): the job list's indexes, each attempt found by its job,
-- the queue's pause switch, and the workers' heartbeats.

-- Newest first, keyset-paged on (created_at, id): every page at any depth is one range scan of
-- an index in the list's order (bench/console_bench.py). Every index here costs every queue
-- write (a job's insert, claim and completion each add an entry), so only the list in
-- general and a tenant's jobs get full indexes; a status or priority filter gets a partial
-- one over its rare values, and the common ones (`completed`, `low`: nearly every row) are read
-- from the general index, where they are dense. Filters left over are checked on the rows.
CREATE INDEX aoer_queue_console_idx ON aoer_queue (created_at DESC, id DESC);
-- Waiting and failed jobs, each in its own partial index (so a plan needs no estimate of how
-- the two overlap); the queue's own statements on waiting jobs keep their better-fitting
-- indexes (aoer_queue_claim_idx, aoer_queue_one_queued_per_tenant: the plan tests say so).
CREATE INDEX aoer_queue_console_queued_idx ON aoer_queue (created_at DESC, id DESC)
    WHERE status = 'queued';
CREATE INDEX aoer_queue_console_failed_idx ON aoer_queue (created_at DESC, id DESC)
    WHERE status = 'failed';
CREATE INDEX aoer_queue_console_priority_idx ON aoer_queue (priority, created_at DESC, id DESC)
    WHERE priority <> 'low';
CREATE INDEX aoer_queue_console_tenant_idx ON aoer_queue (tenant_id, created_at DESC, id DESC);
-- It leads with tenant_id too, so it serves the per-tenant counts (queue_statuses) as well:
-- one index fewer for every queue write to maintain.
DROP INDEX aoer_queue_tenant_status_idx;

-- A job's attempts (and the foreign key's ON DELETE SET NULL when retention deletes jobs).
CREATE INDEX aoer_failures_job_idx ON aoer_failures (job_id, created_at) WHERE job_id IS NOT NULL;

-- One row: whether workers may claim. The claim statement reads it itself, so a worker that
-- missed the pause notification still claims nothing while paused.
CREATE TABLE aoer_queue_state (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    paused      boolean NOT NULL DEFAULT false,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text
);
INSERT INTO aoer_queue_state DEFAULT VALUES;

-- Live workers: each upserts its row every few seconds and deletes it on a clean exit; a row
-- whose heartbeat went stale is a worker that died (shown as gone, deleted by retention).
CREATE TABLE aoer_workers (
    id                 text PRIMARY KEY,
    host               text NOT NULL,
    pid                integer NOT NULL,
    started_at         timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    jobs_in_hand       integer NOT NULL DEFAULT 0 CHECK (jobs_in_hand >= 0),
    paused             boolean NOT NULL DEFAULT false  -- what the worker last heard
);
CREATE INDEX aoer_workers_heartbeat_idx ON aoer_workers (last_heartbeat_at);

-- Scoped callers see whether the queue is paused. An organisation cancels its tenants'
-- waiting jobs under Row Level Security, so the scoped role may DELETE queue rows; a second,
-- restrictive policy admits a scoped delete (current_user aoer_tenant) only under an
-- organisation's claims (and the first one only of that organisation's tenants' rows): a
-- tenant's session deletes nothing. `aoer_app` is a member of aoer_tenant, so the policy
-- names the scoped role itself to leave the app's own deletes (retention) alone.
GRANT SELECT ON aoer_queue_state TO aoer_tenant;
GRANT DELETE ON aoer_queue TO aoer_tenant;
CREATE POLICY aoer_queue_org_deletes ON aoer_queue AS RESTRICTIVE FOR DELETE TO aoer_tenant
    USING (current_user <> 'aoer_tenant' OR aoer_claimed_org_id() IS NOT NULL);
