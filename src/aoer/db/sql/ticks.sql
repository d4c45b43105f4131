-- name: claim_tick
-- The primary key (name, tick) lets exactly one worker insert a tick; others get no row.
INSERT INTO aoer_cron_ticks (name, tick, fired_by)
VALUES (%(name)s, %(tick)s, %(fired_by)s)
ON CONFLICT (name, tick) DO NOTHING
RETURNING tick;

-- name: try_tick_claim_lock
-- Taken (for the transaction) before a tick is claimed, so that the scheduler firing a tick
-- holds it for as long as the tick's row is uncommitted: another scheduler that finds it
-- taken skips the tick instead of waiting on that row (a long action, lock_timeout). Keyed on
-- (job, tick); two-key advisory locks never collide with the one-key ones (model, chunks).
SELECT pg_try_advisory_xact_lock(hashtext('aoer_tick:' || %(name)s),
                                 hashtext(extract(epoch FROM %(tick)s::timestamptz)::text))
       AS locked;

-- name: record_tick_result
-- The tick's action finished with this result.
UPDATE aoer_cron_ticks SET result = %(result)s::jsonb, done_at = now()
WHERE name = %(name)s AND tick = %(tick)s;

-- name: advance_tick
-- A chunked tick committed one more chunk: where to resume and the progress so far, in the
-- chunk's own transaction.
UPDATE aoer_cron_ticks SET resume_after = %(resume_after)s, result = %(result)s::jsonb
WHERE name = %(name)s AND tick = %(tick)s;

-- name: unfinished_ticks
-- Ticks of `name` claimed but not finished: the one just claimed, or one whose scheduler died.
SELECT tick, resume_after, result
FROM aoer_cron_ticks
WHERE name = %(name)s AND done_at IS NULL
ORDER BY tick;

-- name: try_tick_lock
-- Held (session level) by the one scheduler running `name`'s chunks; released when it is
-- done or when its connection ends (a dead process), so another can resume.
SELECT pg_try_advisory_lock(hashtext('aoer_tick:' || %(name)s)) AS locked;

-- name: tick_unlock
SELECT pg_advisory_unlock(hashtext('aoer_tick:' || %(name)s)) AS unlocked;

-- name: release_tick
-- Give back a tick whose action failed outside the tick's transaction, so it fires again.
DELETE FROM aoer_cron_ticks
WHERE name = %(name)s AND tick = %(tick)s AND fired_by = %(fired_by)s;

-- name: last_tick
-- The latest tick of a scheduled job that fired (no row when it never fired).
SELECT tick, fired_at, fired_by, result
FROM aoer_cron_ticks
WHERE name = %(name)s
ORDER BY tick DESC
LIMIT 1;

-- name: tick_in_progress
-- The scheduler inserts its tick row and runs the action in one transaction, so the tick
-- being fired is the row of `name` this transaction inserted (fired_at = now()).
SELECT tick, fired_at, fired_by, result FROM aoer_cron_ticks
WHERE name = %(name)s AND fired_at = now()
ORDER BY tick DESC
LIMIT 1;
