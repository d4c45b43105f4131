-- name: claim_tick
-- The primary key (name, tick) lets exactly one worker insert a tick; others get no row.
INSERT INTO aoer_cron_ticks (name, tick, fired_by)
VALUES (%(name)s, %(tick)s, %(fired_by)s)
ON CONFLICT (name, tick) DO NOTHING
RETURNING tick;

-- name: record_tick_result
UPDATE aoer_cron_ticks SET result = %(result)s::jsonb WHERE name = %(name)s AND tick = %(tick)s;

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
SELECT tick FROM aoer_cron_ticks
WHERE name = %(name)s AND fired_at = now()
ORDER BY tick DESC
LIMIT 1;
