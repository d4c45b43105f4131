-- Monthly partitions for the two tables that grow with tenants x days (issue 16):
-- `aiv_raw_signals` by `date`, `metrics_events` by `created_at` (UTC months).
--
-- Both are converted in place: the table is renamed aside, the partitioned table is created
-- under the old name with the same columns, defaults, checks, foreign key, indexes, grants and
-- Row Level Security, its rows are moved in, and the old table is dropped. The primary key of
-- a partitioned table must include the partition key: aiv_raw_signals' (dealer_id, date)
-- already does; metrics_events' becomes (id, created_at) (nothing references its id).
--
-- Every partitioned table has a DEFAULT partition, so no insert ever fails for want of a
-- month; the daily retention tick creates the coming months ahead (aoer_create_month_partition,
-- which also moves any rows of that month out of the default partition) and drops whole months
-- past the retention age (aoer_drop_partitions_before) instead of deleting rows in batches.
--
-- Partitions are reached through their parent only: RLS, its policies and the grants are on
-- the parent; each partition has RLS enabled, no policy and no grant, so `aoer_tenant` and
-- `aoer_app` cannot read one directly. The worker's role does not own the tables, so the two
-- maintenance functions run as their owner (SECURITY DEFINER) and only `aoer_app` may call them.

-- The partition key column of a partitioned table (one-column range keys only).
CREATE FUNCTION aoer_partition_key(parent regclass) RETURNS name
LANGUAGE sql STABLE AS $$
    SELECT a.attname
    FROM pg_partitioned_table pt
    JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
    WHERE pt.partrelid = parent
$$;

-- A month's bound as the key's type reads it: '2026-12-01' for a date key, UTC midnight for a
-- timestamptz key.
CREATE FUNCTION aoer_month_bound(parent regclass, month date) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE format_type(a.atttypid, NULL)
               WHEN 'date' THEN month::text
               ELSE (month::timestamp AT TIME ZONE 'UTC')::text
           END
    FROM pg_attribute a
    WHERE a.attrelid = parent AND a.attname = aoer_partition_key(parent)
$$;

-- Create `<parent>_pYYYY_MM` for the month holding `month` unless it exists; returns whether
-- it created one. Rows of that month already in the default partition move into it, so the
-- attach never fails on them. Serialised by an advisory lock.
CREATE FUNCTION aoer_create_month_partition(parent regclass, month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    lo date := date_trunc('month', month)::date;
    hi date := (date_trunc('month', month) + interval '1 month')::date;
    part name := format('%s_p%s', (SELECT relname FROM pg_class WHERE oid = parent),
                        to_char(lo, 'YYYY_MM'));
    key name := aoer_partition_key(parent);
    lo_bound text := aoer_month_bound(parent, lo);
    hi_bound text := aoer_month_bound(parent, hi);
    default_part regclass;
BEGIN
    IF key IS NULL OR parent::text NOT IN ('aiv_raw_signals', 'metrics_events') THEN
        RAISE EXCEPTION '% is not one of the monthly partitioned tables', parent;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('aoer_partitions'));
    IF to_regclass(format('public.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE public.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   part, parent);
    SELECT i.inhrelid::regclass INTO default_part
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
    IF default_part IS NOT NULL THEN
        EXECUTE format(
            'WITH moved AS (DELETE FROM %1$s WHERE %2$I >= %3$L AND %2$I < %4$L RETURNING *)'
            ' INSERT INTO public.%5$I SELECT * FROM moved',
            default_part, key, lo_bound, hi_bound, part);
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, part, lo_bound, hi_bound);
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', part);
    RETURN true;
END
$$;

-- Create the partitions of this month and the `months_ahead` following ones; how many it created.
CREATE FUNCTION aoer_create_partitions_ahead(parent regclass, months_ahead integer)
RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FILTER (WHERE aoer_create_month_partition(
               parent, (date_trunc('month', now() AT TIME ZONE 'UTC')
                        + make_interval(months => k))::date))::integer
    FROM generate_series(0, greatest(months_ahead, 0)) k
$$;

-- Retention by whole months: drop every monthly partition whose range ends at or before
-- `cutoff`, and delete the default partition's rows older than it (the default holds only
-- rows that arrived for a month without a partition: normally none). Returns the partitions
-- dropped and the default rows deleted. Rows of the month that straddles the cutoff stay
-- until that whole month is past it (at most a month longer than the retention age).
CREATE FUNCTION aoer_drop_partitions_before(parent regclass, cutoff timestamptz,
                                            OUT dropped integer, OUT deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part record;
    key name := aoer_partition_key(parent);
    is_date boolean;
BEGIN
    IF key IS NULL OR parent::text NOT IN ('aiv_raw_signals', 'metrics_events') THEN
        RAISE EXCEPTION '% is not one of the monthly partitioned tables', parent;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('aoer_partitions'));
    SELECT format_type(a.atttypid, NULL) = 'date' INTO is_date
    FROM pg_attribute a WHERE a.attrelid = parent AND a.attname = key;
    dropped := 0;
    deleted := 0;
    FOR part IN
        SELECT c.oid::regclass AS id,
               pg_get_expr(c.relpartbound, c.oid) AS bound,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)') AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
        ORDER BY c.relname
    LOOP
        IF part.bound = 'DEFAULT' THEN
            EXECUTE format('DELETE FROM %s WHERE %I < %L', part.id, key,
                           CASE WHEN is_date THEN (cutoff AT TIME ZONE 'UTC')::date::text
                                ELSE cutoff::text END);
            GET DIAGNOSTICS deleted = ROW_COUNT;
        ELSIF (is_date AND part.upper::date <= (cutoff AT TIME ZONE 'UTC')::date)
              OR (NOT is_date AND part.upper::timestamptz <= cutoff) THEN
            EXECUTE format('DROP TABLE %s', part.id);
            dropped := dropped + 1;
        END IF;
    END LOOP;
END
$$;

REVOKE EXECUTE ON FUNCTION aoer_create_month_partition(regclass, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION aoer_create_partitions_ahead(regclass, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION aoer_drop_partitions_before(regclass, timestamptz) FROM PUBLIC;

-- The grants `old` holds (aoer_tenant's from 0002, aoer_app's from its sync) given on `new`.
CREATE FUNCTION aoer_copy_grants(old regclass, new regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    acl record;
BEGIN
    FOR acl IN
        SELECT a.privilege_type,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(c.relacl) a
        LEFT JOIN pg_roles r ON r.oid = a.grantee
        WHERE c.oid = old AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s', acl.privilege_type, new, acl.grantee);
    END LOOP;
END
$$;

LOCK TABLE aiv_raw_signals, metrics_events IN ACCESS EXCLUSIVE MODE;

-- aiv_raw_signals, by `date` -------------------------------------------------------------
ALTER TABLE aiv_raw_signals RENAME TO aiv_raw_signals_unpartitioned;
ALTER INDEX aiv_raw_signals_pkey RENAME TO aiv_raw_signals_unpartitioned_pkey;

CREATE TABLE aiv_raw_signals (
    dealer_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    date          date NOT NULL,
    seo           numeric(5,2) CHECK (seo BETWEEN 0 AND 100),
    aeo           numeric(5,2) CHECK (aeo BETWEEN 0 AND 100),
    geo           numeric(5,2) CHECK (geo BETWEEN 0 AND 100),
    ugc           numeric(5,2) CHECK (ugc BETWEEN 0 AND 100),
    geolocal      numeric(5,2) CHECK (geolocal BETWEEN 0 AND 100),
    observed_aiv  numeric(5,2) CHECK (observed_aiv BETWEEN 0 AND 100),
    observed_rar  numeric(7,2) CHECK (observed_rar >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    aeo_derived   boolean NOT NULL DEFAULT false,  -- provenance of aeo/geo (0012)
    geo_derived   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (dealer_id, date)
) PARTITION BY RANGE (date);
CREATE TABLE aiv_raw_signals_default PARTITION OF aiv_raw_signals DEFAULT;
ALTER TABLE aiv_raw_signals_default ENABLE ROW LEVEL SECURITY;

SELECT aoer_create_month_partition('aiv_raw_signals', m)
FROM (SELECT DISTINCT date_trunc('month', date)::date AS m FROM aiv_raw_signals_unpartitioned
      UNION
      SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k))::date
      FROM generate_series(0, 3) k) months
ORDER BY m;

INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv,
                             observed_rar, created_at, updated_at, aeo_derived, geo_derived)
SELECT dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv, observed_rar, created_at,
       updated_at, aeo_derived, geo_derived
FROM aiv_raw_signals_unpartitioned;

SELECT aoer_copy_grants('aiv_raw_signals_unpartitioned', 'aiv_raw_signals');
DROP TABLE aiv_raw_signals_unpartitioned;
SELECT aoer_protect_tenant_table('aiv_raw_signals', 'dealer_id');

-- metrics_events, by `created_at` (UTC months) ---------------------------------------------
ALTER TABLE metrics_events RENAME TO metrics_events_unpartitioned;
ALTER INDEX metrics_events_pkey RENAME TO metrics_events_unpartitioned_pkey;
ALTER INDEX metrics_events_tenant_created_idx RENAME TO metrics_events_unpartitioned_tenant_idx;
ALTER INDEX metrics_events_created_idx RENAME TO metrics_events_unpartitioned_created_idx;

CREATE TABLE metrics_events (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_type  varchar(50) NOT NULL,
    event_data  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX metrics_events_tenant_created_idx ON metrics_events (tenant_id, created_at DESC);
CREATE INDEX metrics_events_created_idx ON metrics_events (created_at);
CREATE TABLE metrics_events_default PARTITION OF metrics_events DEFAULT;
ALTER TABLE metrics_events_default ENABLE ROW LEVEL SECURITY;

SELECT aoer_create_month_partition('metrics_events', m)
FROM (SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS m
      FROM metrics_events_unpartitioned
      UNION
      SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k))::date
      FROM generate_series(0, 3) k) months
ORDER BY m;

INSERT INTO metrics_events (id, tenant_id, event_type, event_data, created_at)
SELECT id, tenant_id, event_type, event_data, created_at FROM metrics_events_unpartitioned;

SELECT aoer_copy_grants('metrics_events_unpartitioned', 'metrics_events');
DROP TABLE metrics_events_unpartitioned;
SELECT aoer_protect_tenant_table('metrics_events', 'tenant_id');

DROP FUNCTION aoer_copy_grants(regclass, regclass);

-- Autovacuum never analyses a partitioned parent; the moved rows get statistics now.
ANALYZE aiv_raw_signals;
ANALYZE metrics_events;

-- aoer_app's grants and all-rows policy go on the parents only (0007's sync, now skipping
-- partitions): a partition is reached through its parent.
CREATE OR REPLACE FUNCTION aoer_sync_app_privileges() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    app CONSTANT regrole := 'aoer_app'::regrole;
    rel record;
    fn record;
    wanted text[];
    held text[];
    privilege text;
    kind text;
    changes integer := 0;
BEGIN
    IF NOT has_schema_privilege('aoer_app', 'public', 'USAGE') THEN
        GRANT USAGE ON SCHEMA public TO aoer_app;
        changes := changes + 1;
    END IF;

    FOR rel IN
        SELECT c.oid::regclass AS id, c.relname, c.relkind, c.relrowsecurity, c.relacl
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND NOT c.relispartition
          AND pg_has_role(c.relowner, 'USAGE')
        ORDER BY c.relname
    LOOP
        wanted := aoer_app_privileges(rel.relname, rel.relkind);
        kind := CASE WHEN rel.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END;
        SELECT coalesce(array_agg(a.privilege_type), '{}') INTO held
        FROM aclexplode(rel.relacl) a
        WHERE a.grantee = app;
        FOREACH privilege IN ARRAY held LOOP
            IF NOT privilege = ANY (wanted) THEN
                EXECUTE format('REVOKE %s ON %s %s FROM aoer_app', privilege, kind, rel.id);
                changes := changes + 1;
            END IF;
        END LOOP;
        FOREACH privilege IN ARRAY wanted LOOP
            IF NOT privilege = ANY (held) THEN
                EXECUTE format('GRANT %s ON %s %s TO aoer_app', privilege, kind, rel.id);
                changes := changes + 1;
            END IF;
        END LOOP;
        IF rel.relrowsecurity AND NOT EXISTS (
            SELECT 1 FROM pg_policy p WHERE p.polrelid = rel.id AND app = ANY (p.polroles)
        ) THEN
            EXECUTE format(
                'CREATE POLICY aoer_app_all_rows ON %s TO aoer_app USING (true) WITH CHECK (true)',
                rel.id
            );
            changes := changes + 1;
        END IF;
    END LOOP;

    FOR fn IN
        SELECT p.oid::regprocedure AS id
        FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND p.proname LIKE 'aoer\_%'
          AND p.proname <> 'aoer_sync_app_privileges'
          AND pg_has_role(p.proowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = app)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO aoer_app', fn.id);
        changes := changes + 1;
    END LOOP;
    RETURN changes;
END
$$;
REVOKE EXECUTE ON FUNCTION aoer_sync_app_privileges() FROM PUBLIC;

-- The fleet tick queues tenants in chunks, each its own transaction (issue 16), so workers
-- start on the first chunk instead of waiting for the whole fleet. The tick's row records how
-- far it got: `resume_after` is the last tenant id queued, committed with that chunk, so a
-- scheduler that dies mid-tick leaves a row another one resumes from, neither losing nor
-- queuing twice any tenant. `done_at` is set when a tick's action has finished.
ALTER TABLE aoer_cron_ticks
    ADD COLUMN resume_after uuid,
    ADD COLUMN done_at timestamptz;
UPDATE aoer_cron_ticks SET done_at = fired_at;
CREATE INDEX aoer_cron_ticks_unfinished_idx ON aoer_cron_ticks (name, tick) WHERE done_at IS NULL;
