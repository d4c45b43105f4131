-- A tenant's waiting job is looked up by the one index made for it, whatever the statistics
-- say (issue 16: the tick at 1,000,000 tenants).
--
-- Three partial indexes hold exactly the waiting jobs (`status = 'queued'`): the claim's
-- (priority_rank DESC, scheduled_at), the console's (created_at DESC, id DESC) and the
-- one-waiting-job-per-tenant unique index (tenant_id). Any of them can answer "this tenant's
-- waiting job" -- the first two by reading every waiting job and filtering on tenant_id. The
-- planner costs that read from the statistics of `status`, and those are taken when the queue
-- is drained (autovacuum's ANALYZE, between refreshes): no waiting job at all, so every
-- partial index of waiting jobs is costed at one row, and the claim index's "one row" came out
-- cheaper than the unique probe. Right after a tick, with hundreds of thousands of jobs
-- waiting, each lookup then read all of them: the tick's chunks (each reads its tenants'
-- waiting jobs), a failed job's "does this tenant wait already" check, an enqueue.
--
-- The claim's and the console's indexes now carry one more condition in their predicate, one
-- that their own statements state and a lookup by tenant does not, so only the unique index
-- can serve a lookup by tenant:
-- * the claim index: `priority_rank IS NOT NULL` -- every statement that reads it compares
--   priority_rank (a comparison implies the column is not null); priority_rank is never null.
-- * the console's waiting-jobs index: `retry_count >= 0` -- a CHECK constraint of the table, so
--   it holds for every row; the console's list of waiting jobs states it (console.sql).
-- Both are rebuilt here, which reads the whole queue (retention keeps a week of jobs) and
-- blocks writes to it meanwhile: 0.65 s for a week of jobs at 100,000 tenants (2.8 million
-- rows, measured warm), so some seconds at 1,000,000.
DROP INDEX aoer_queue_claim_idx;
CREATE INDEX aoer_queue_claim_idx ON aoer_queue (priority_rank DESC, scheduled_at)
    WHERE status = 'queued' AND priority_rank IS NOT NULL;

DROP INDEX aoer_queue_console_queued_idx;
CREATE INDEX aoer_queue_console_queued_idx ON aoer_queue (created_at DESC, id DESC)
    WHERE status = 'queued' AND retry_count >= 0;
