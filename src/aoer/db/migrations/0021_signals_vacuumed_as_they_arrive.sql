-- Signals vacuumed as they arrive, so the score keeps reading its window from the key alone.
--
-- Since 0017 a recompute reads a tenant's 30 days from the signals' primary key without
-- touching the heap -- for rows the visibility map marks all-visible, that is rows vacuumed
-- since they arrived. Signals arrive a day at a time into the month's partition, and
-- PostgreSQL's insert-driven autovacuum waits until the rows inserted since the last vacuum
-- exceed 1,000 + 20 % of the partition (autovacuum_vacuum_insert_scale_factor = 0.2): from
-- the sixth day of a month one day's arrivals no longer reach it, and by the 25th up to five
-- days of every window wait for their vacuum, each of their rows a heap visit per
-- recompute. Measured on 100,000 tenants with the newest 4 days unvacuumed: a 1,000-tenant
-- batch read 2,757 heap pages of that month (10.1 ms) instead of an index-only scan (1.8 ms,
-- no heap page) (bench/README.md, "Signals vacuumed as they arrive"). At 1 % (0.01) a day's
-- arrivals exceed the threshold all month for any fleet above ~1,500 dealerships: with
-- autovacuum on, a day of 100,000 rows into a 2.5-million-row partition was vacuumed 14 s
-- after it committed (0.16 s, 3.7 % of the pages read); under 0.2 it waited for five days' rows.
--
-- The setting is a storage parameter of each partition (PostgreSQL accepts none on the
-- partitioned parent). It is set on the partitions that exist, and the retention tick sets it
-- on the months it creates ahead. A partition on which an operator already chose a value
-- keeps that value: only partitions without the parameter are given it.

CREATE FUNCTION aoer_tune_signal_partitions() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part regclass;
    tuned integer := 0;
BEGIN
    FOR part IN
        SELECT c.oid::regclass
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'aiv_raw_signals'::regclass
          AND NOT EXISTS (SELECT 1 FROM unnest(c.reloptions) o
                          WHERE o LIKE 'autovacuum\_vacuum\_insert\_scale\_factor=%')
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %s SET (autovacuum_vacuum_insert_scale_factor = 0.01)',
                       part);
        tuned := tuned + 1;
    END LOOP;
    RETURN tuned;
END
$$;
REVOKE EXECUTE ON FUNCTION aoer_tune_signal_partitions() FROM PUBLIC;

-- The retention tick's entry point (0014), now also tuning the signals' new months.
CREATE OR REPLACE FUNCTION aoer_create_partitions_ahead(parent regclass, months_ahead integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    created integer;
BEGIN
    SELECT count(*) FILTER (WHERE aoer_create_month_partition(
               parent, (date_trunc('month', now() AT TIME ZONE 'UTC')
                        + make_interval(months => k))::date))::integer
    INTO created
    FROM generate_series(0, greatest(months_ahead, 0)) k;
    IF parent = 'aiv_raw_signals'::regclass THEN
        PERFORM aoer_tune_signal_partitions();
    END IF;
    RETURN created;
END
$$;

SELECT aoer_tune_signal_partitions();
