-- The console's indexes of waiting, finished and failed jobs ascending, read backwards.
--
-- They were declared in the list's order, newest first (`created_at DESC, id DESC`). A job's
-- entry carries its creation time and its time-ordered id (0018), so every tick and every
-- completion inserts at the *left* edge of such an index, and B-tree splits that edge half
-- and half: its pages stay half full (`pgstatindex`: 50 % leaf density after a refresh).
-- Only the right edge is split the way appended keys want (PostgreSQL leaves the left page
-- 90 % full there). Ascending, they fill from the right: after a 20,000-job refresh by two
-- workers the waiting jobs' index had 97 leaf pages instead of 177 (91 % dense) and the
-- finished jobs' 111 instead of 176 (78-80 %: two workers complete batches a little out of
-- order), and a week of finished jobs is kept in about 60 % of the pages (bench/README.md,
-- "The console's indexes, filled from the right"). A B-tree is read backwards as cheaply as
-- forwards: the console's newest-first pages are the same range scans, backwards (its plan
-- tests name the same indexes).
--
-- Rebuilding reads the whole queue once, under a lock that holds its writes, as 0023's did
-- (0.65 s for a week of jobs at 100,000 tenants).
DROP INDEX aoer_queue_console_queued_idx;
CREATE INDEX aoer_queue_console_queued_idx ON aoer_queue (created_at, id)
    WHERE status = 'queued' AND retry_count >= 0;

DROP INDEX aoer_queue_console_finished_idx;
CREATE INDEX aoer_queue_console_finished_idx ON aoer_queue (created_at, id)
    WHERE status IN ('completed', 'failed');

DROP INDEX aoer_queue_console_failed_idx;
CREATE INDEX aoer_queue_console_failed_idx ON aoer_queue (created_at, id)
    WHERE status = 'failed';
