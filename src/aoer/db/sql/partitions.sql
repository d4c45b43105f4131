-- name: create_partitions_ahead
-- This month's partition of `parent` and the `months` following ones, unless they exist
-- (0014_partitions.sql); how many it created.
SELECT aoer_create_partitions_ahead(%(parent)s::regclass, %(months)s) AS created;

-- name: drop_partitions_before
-- Retention by whole months: drop the partitions of `parent` that end `days` or more days
-- ago, and delete the default partition's rows older than that.
SELECT dropped, deleted
FROM aoer_drop_partitions_before(%(parent)s::regclass, now() - make_interval(days => %(days)s));

-- name: partition_names
-- The partitions of `parent` (the default one included), by name.
SELECT c.relname::text AS name
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %(parent)s::regclass
ORDER BY c.relname;
