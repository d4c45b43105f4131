-- Adopting the old Node/Supabase system's database in place (DESIGN §17; aoer.db.adoption).
-- The old tables are set aside in schema `aoer_adoption`, migration 0001 builds this schema's
-- tables, their rows are copied over, and the set-aside tables are dropped: all inside the
-- migration's one transaction.

-- name: adoption_tables_present
-- The old tables found in schema public.
SELECT c.relname AS name
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relkind IN ('r', 'p')
  AND c.relname = ANY (%(tables)s::text[])
ORDER BY c.relname;

-- name: adoption_columns
-- Every column of the old tables, to compare with the old migration's.
SELECT table_name AS table, column_name AS column
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = ANY (%(tables)s::text[])
ORDER BY table_name, ordinal_position;

-- name: adoption_relation_exists
SELECT to_regclass(%(name)s) IS NOT NULL AS found;

-- name: adoption_schema_exists
SELECT to_regnamespace(%(name)s) IS NOT NULL AS found;

-- name: adoption_dependents
-- Objects outside the old migration that use its tables (a view, a foreign key): the old
-- tables are replaced, so these would break; the adoption refuses and names them.
WITH seed AS (
    SELECT c.oid
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY (%(tables)s::text[])
)
SELECT DISTINCT v.oid::regclass::text AS name, 'a view' AS kind
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class
WHERE d.classid = 'pg_rewrite'::regclass
  AND d.refobjid IN (SELECT oid FROM seed)
  AND v.oid NOT IN (SELECT oid FROM seed)
  AND NOT (v.relnamespace = 'public'::regnamespace AND v.relname = ANY (%(views)s::text[]))
UNION
SELECT DISTINCT con.conrelid::regclass::text, 'foreign key ' || con.conname
FROM pg_constraint con
WHERE con.contype = 'f'
  AND con.confrelid IN (SELECT oid FROM seed)
  AND con.conrelid NOT IN (SELECT oid FROM seed)
ORDER BY 1;

-- name: adoption_bad_queue_priority
SELECT id::text AS row, coalesce(quote_literal(priority), 'NULL') AS value,
       count(*) OVER () AS total
FROM aoer_queue
WHERE priority IS NULL OR priority NOT IN ('low', 'medium', 'high', 'urgent')
ORDER BY id
LIMIT %(limit)s;

-- name: adoption_bad_queue_status
SELECT id::text AS row, coalesce(quote_literal(status), 'NULL') AS value,
       count(*) OVER () AS total
FROM aoer_queue
WHERE status IS NULL OR status NOT IN ('queued', 'processing', 'completed', 'failed')
ORDER BY id
LIMIT %(limit)s;

-- name: adoption_bad_queue_retries
SELECT id::text AS row,
       format('retry_count %%s, max_retries %%s', retry_count, max_retries) AS value,
       count(*) OVER () AS total
FROM aoer_queue
WHERE retry_count < 0 OR max_retries < 1
ORDER BY id
LIMIT %(limit)s;

-- name: adoption_bad_summary_score
SELECT id::text AS row, coalesce(aoer_score::text, 'NULL') AS value, count(*) OVER () AS total
FROM aoer_summary
WHERE aoer_score IS NULL OR aoer_score NOT BETWEEN 0 AND 100
ORDER BY id
LIMIT %(limit)s;

-- name: adoption_bad_summary_risk
SELECT id::text AS row, coalesce(visibility_risk::text, 'NULL') AS value,
       count(*) OVER () AS total
FROM aoer_summary
WHERE visibility_risk IS NULL OR visibility_risk NOT BETWEEN 0 AND 1
ORDER BY id
LIMIT %(limit)s;

-- name: adoption_null_tenant
-- Rows that name no tenant, in any of the old tables (signals name theirs `dealer_id`).
SELECT row, value, count(*) OVER () AS total
FROM (
    SELECT 'aoer_summary ' || id AS row, 'tenant_id NULL' AS value
    FROM aoer_summary WHERE tenant_id IS NULL
    UNION ALL
    SELECT 'metrics_events ' || id, 'tenant_id NULL' FROM metrics_events WHERE tenant_id IS NULL
    UNION ALL
    SELECT 'aoer_queue ' || id, 'tenant_id NULL' FROM aoer_queue WHERE tenant_id IS NULL
    UNION ALL
    SELECT 'aoer_failures ' || id, 'tenant_id NULL' FROM aoer_failures WHERE tenant_id IS NULL
    UNION ALL
    SELECT 'metrics_events ' || id, 'event_type NULL' FROM metrics_events
    WHERE event_type IS NULL
) bad
ORDER BY row
LIMIT %(limit)s;

-- name: adoption_bad_signals
-- Signal rows this schema refuses: no dealer or date, a value outside its range, or a day
-- sent twice.
SELECT row, value, count(*) OVER () AS total
FROM (
    SELECT coalesce(s.dealer_id::text, 'NULL') || ' ' || coalesce(s.date::text, 'NULL') AS row,
           string_agg(v.name || ' ' || coalesce(v.value::text, 'NULL'), ', ') AS value
    FROM aiv_raw_signals s
    CROSS JOIN LATERAL (VALUES ('dealer_id', NULL::numeric, s.dealer_id IS NULL),
                               ('date', NULL, s.date IS NULL),
                               ('seo', s.seo, s.seo NOT BETWEEN 0 AND 100),
                               ('aeo', s.aeo, s.aeo NOT BETWEEN 0 AND 100),
                               ('geo', s.geo, s.geo NOT BETWEEN 0 AND 100),
                               ('ugc', s.ugc, s.ugc NOT BETWEEN 0 AND 100),
                               ('geolocal', s.geolocal, s.geolocal NOT BETWEEN 0 AND 100),
                               ('observed_aiv', s.observed_aiv,
                                s.observed_aiv NOT BETWEEN 0 AND 100),
                               ('observed_rar', s.observed_rar, s.observed_rar < 0))
         AS v (name, value, bad)
    WHERE v.bad
    GROUP BY s.ctid, s.dealer_id, s.date
    UNION ALL
    SELECT dealer_id || ' ' || date, count(*) || ' rows for one day'
    FROM aiv_raw_signals
    WHERE dealer_id IS NOT NULL AND date IS NOT NULL
    GROUP BY dealer_id, date
    HAVING count(*) > 1
) bad
ORDER BY row
LIMIT %(limit)s;

-- name: adoption_counts
-- What the adoption will do, counted before anything changes (the dry run's plan).
WITH found AS (
    SELECT tenant_id AS id FROM aoer_summary
    UNION SELECT tenant_id FROM metrics_events
    UNION SELECT tenant_id FROM aoer_queue
    UNION SELECT tenant_id FROM aoer_failures
),
queued AS (
    SELECT tenant_id, count(*) AS jobs FROM aoer_queue WHERE status = 'queued' GROUP BY tenant_id
)
SELECT (SELECT count(*) FROM aoer_summary)::bigint AS summaries,
       (SELECT count(*) FROM metrics_events)::bigint AS events,
       (SELECT count(*) FROM aoer_queue)::bigint AS jobs,
       (SELECT count(*) FROM aoer_failures)::bigint AS failures,
       (SELECT count(*) FROM found)::bigint AS tenants,
       (SELECT coalesce(sum(jobs - 1), 0) FROM queued WHERE jobs > 1)::bigint AS merged_jobs,
       (SELECT count(*) FROM queued WHERE jobs > 1)::bigint AS merged_tenants,
       (SELECT count(*) FROM aoer_queue WHERE status = 'processing')::bigint AS processing;

-- name: adoption_retention_preview
-- The old rows the workers' first daily retention will delete at these ages (the dry run's
-- plan): finished jobs, failures and events past their age. Adopted events land in the
-- events' default partition (monthly partitions begin with the adoption's month: 0014),
-- whose rows retention deletes by their own time, not a month at a time.
SELECT (SELECT count(*) FROM aoer_queue
        WHERE status IN ('completed', 'failed')
          AND completed_at < now() - make_interval(days => %(jobs_days)s))::bigint AS jobs,
       (SELECT count(*) FROM aoer_failures
        WHERE created_at < now() - make_interval(days => %(failures_days)s))::bigint AS failures,
       (SELECT count(*) FROM metrics_events
        WHERE created_at < now() - make_interval(days => %(events_days)s))::bigint AS events;

-- name: adoption_signal_counts
-- Signal rows and the dealers they name that no other old table does.
SELECT count(*)::bigint AS signals,
       count(DISTINCT dealer_id) FILTER (
           WHERE dealer_id NOT IN (SELECT tenant_id FROM aoer_summary
                                   UNION SELECT tenant_id FROM metrics_events
                                   UNION SELECT tenant_id FROM aoer_queue
                                   UNION SELECT tenant_id FROM aoer_failures))::bigint
           AS extra_tenants
FROM aiv_raw_signals;

-- name: adoption_old_objects
-- The old migration's views, functions and triggers that the adoption drops, and its policies
-- (dropped with its tables), by kind.
SELECT 'view' AS kind, c.oid::regclass::text AS name
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
  AND c.relname = ANY (%(views)s::text[])
UNION ALL
SELECT 'function', p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY (%(functions)s::text[])
UNION ALL
SELECT 'trigger', format('%%I ON %%s', t.tgname, t.tgrelid::regclass)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal
  AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY (%(tables)s::text[])
UNION ALL
SELECT 'policy', format('%%I ON %%s', p.polname, p.polrelid::regclass)
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY (%(tables)s::text[])
ORDER BY 1, 2;

-- name: adoption_create_schema
CREATE SCHEMA aoer_adoption;

-- name: adoption_empty_signals
-- An old database without signals adopts an empty table (the copy below reads one).
CREATE TABLE aoer_adoption.aiv_raw_signals (
    dealer_id uuid, date date, seo numeric, aeo numeric, geo numeric, ugc numeric,
    geolocal numeric, observed_aiv numeric, observed_rar numeric,
    created_at timestamptz, updated_at timestamptz
);

-- name: adoption_create_tenants
-- One tenant per id the old tables name, named after its id until renamed (its first 8 hex
-- digits; the whole id when another id starts with the same 8, as ids made in the same
-- minute do with UUIDv7: names are unique, migration 0016); created when it first appears.
INSERT INTO tenants (id, name, created_at, updated_at)
SELECT id,
       'Tenant ' || CASE WHEN count(*) OVER (PARTITION BY left(id::text, 8)) = 1
                         THEN left(id::text, 8) ELSE id::text END,
       first_seen, first_seen
FROM (
    SELECT id, coalesce(min(created_at), now()) AS first_seen
    FROM (
        SELECT tenant_id AS id, created_at FROM aoer_adoption.aoer_summary
        UNION ALL SELECT tenant_id, created_at FROM aoer_adoption.metrics_events
        UNION ALL SELECT tenant_id, created_at FROM aoer_adoption.aoer_queue
        UNION ALL SELECT tenant_id, created_at FROM aoer_adoption.aoer_failures
        UNION ALL SELECT dealer_id, created_at FROM aoer_adoption.aiv_raw_signals
    ) named
    GROUP BY id
) found
ORDER BY id;

-- name: adoption_copy_signals
INSERT INTO aiv_raw_signals (dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv,
                             observed_rar, created_at, updated_at)
SELECT dealer_id, date, seo, aeo, geo, ugc, geolocal, observed_aiv, observed_rar,
       coalesce(created_at, now()), coalesce(updated_at, created_at, now())
FROM aoer_adoption.aiv_raw_signals;

-- name: adoption_copy_summaries
INSERT INTO aoer_summary (id, tenant_id, aoer_score, visibility_risk, last_updated, metrics,
                          created_at, updated_at)
SELECT id, tenant_id, aoer_score, visibility_risk,
       coalesce(last_updated, updated_at, created_at, now()), coalesce(metrics, '{}'::jsonb),
       coalesce(created_at, now()), coalesce(updated_at, created_at, now())
FROM aoer_adoption.aoer_summary;

-- name: adoption_copy_events
-- As written; migration 0030 then adds the keys the score history reads to the old system's
-- `aoer_recompute` events.
INSERT INTO metrics_events (id, tenant_id, event_type, event_data, created_at)
SELECT id, tenant_id, event_type, coalesce(event_data, '{}'::jsonb), coalesce(created_at, now())
FROM aoer_adoption.metrics_events;

-- name: adoption_copy_jobs
-- Every job is kept. Of a tenant's several waiting jobs the earliest scheduled one stays
-- waiting, with the highest of their priorities and the earliest schedule; the others are
-- closed as completed, their error_message naming the job that carries their work. Jobs the
-- old worker had in hand get an expired lease: the workers take them back as a lost attempt,
-- as after any crash (DESIGN §4).
WITH ranked AS (
    SELECT q.*,
           q.status = 'queued' AS waiting,
           row_number() OVER tenant_waiting AS nth,
           first_value(q.id) OVER tenant_waiting AS keeper,
           max(aoer_priority_rank(q.priority)) OVER tenant_group AS top_rank,
           min(q.scheduled_at) OVER tenant_group AS first_due
    FROM aoer_adoption.aoer_queue q
    WINDOW tenant_group AS (PARTITION BY q.tenant_id, q.status = 'queued'),
           tenant_waiting AS (PARTITION BY q.tenant_id, q.status = 'queued'
                              ORDER BY q.scheduled_at NULLS LAST, q.created_at, q.id)
)
INSERT INTO aoer_queue (id, tenant_id, priority, status, retry_count, max_retries, scheduled_at,
                        started_at, completed_at, error_message, locked_by, lease_expires_at,
                        created_at, updated_at)
SELECT id, tenant_id,
       CASE WHEN waiting AND nth = 1
            THEN (ARRAY['low', 'medium', 'high', 'urgent'])[top_rank] ELSE priority END,
       CASE WHEN waiting AND nth > 1 THEN 'completed' ELSE status END,
       coalesce(retry_count, 0),
       coalesce(max_retries, 3),
       CASE WHEN waiting AND nth = 1 THEN coalesce(first_due, created_at, now())
            ELSE coalesce(scheduled_at, created_at, now()) END,
       started_at,
       CASE WHEN waiting AND nth > 1 THEN now()
            WHEN status IN ('completed', 'failed')
                THEN coalesce(completed_at, updated_at, created_at, now())
            ELSE completed_at END,
       CASE WHEN waiting AND nth > 1
            THEN 'coalesced into job ' || keeper
                 || ' when aoer migrate adopted the old system''s database'
            ELSE error_message END,
       CASE WHEN status = 'processing' THEN 'old-system-worker' END,
       CASE WHEN status = 'processing' THEN now() END,
       coalesce(created_at, now()),
       coalesce(updated_at, created_at, now())
FROM ranked;

-- name: adoption_coalesced
-- How many waiting jobs the copy above closed into another (for the log).
SELECT count(*)::bigint AS n FROM aoer_queue
WHERE starts_with(error_message, 'coalesced into job ')
  AND strpos(error_message, ' when aoer migrate adopted the old system') > 0;

-- name: adoption_copy_failures
INSERT INTO aoer_failures (id, tenant_id, error_message, error_data, retry_count, created_at)
SELECT id, tenant_id, coalesce(error_message, ''), coalesce(error_data, '{}'::jsonb),
       coalesce(retry_count, 0), coalesce(created_at, now())
FROM aoer_adoption.aoer_failures;

-- name: adoption_carry_grants
-- What other roles held on the old tables (Supabase's anon, authenticated, service_role) they
-- hold on the new ones, as far as 0030's rule lets them (aoer_confine_other_roles runs after
-- this: SELECT, and row writes only for roles that bypass RLS); a role that could read them
-- may also read what the old views and functions now read too: `tenants` (its own row, under
-- RLS), the signals and the current model's weights, and the two views, whose grants went with
-- the old views. The old tables' publications (Supabase Realtime) publish the new ones, with
-- the same replica identity. The application's own roles get theirs from the migrations.
DO $$
DECLARE
    old record;
BEGIN
    FOR old IN
        SELECT c.relname, a.privilege_type,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                    ELSE quote_ident(a.grantee::regrole::text) END AS grantee
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(c.relacl) a
        WHERE c.relnamespace = 'aoer_adoption'::regnamespace
          AND NOT aoer_is_own_role(a.grantee, c.relowner)
    LOOP
        EXECUTE format('GRANT %s ON public.%I TO %s', old.privilege_type, old.relname,
                       old.grantee);
    END LOOP;
    FOR old IN
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                             ELSE quote_ident(a.grantee::regrole::text) END AS grantee
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(c.relacl) a
        WHERE c.relnamespace = 'aoer_adoption'::regnamespace
          AND a.privilege_type = 'SELECT'
          AND NOT aoer_is_own_role(a.grantee, c.relowner)
    LOOP
        EXECUTE format('GRANT SELECT ON public.tenants, public.aiv_raw_signals, '
                       'public.v_aoer_dashboard, public.v_aoer_queue_status TO %s', old.grantee);
        EXECUTE format('GRANT SELECT (version, status, seo, aeo, geo, ugc, geolocal, intercept) '
                       'ON public.model_weights TO %s', old.grantee);
    END LOOP;
    FOR old IN
        SELECT p.pubname, c.relname
        FROM pg_publication_rel pr
        JOIN pg_publication p ON p.oid = pr.prpubid
        JOIN pg_class c ON c.oid = pr.prrelid
        WHERE c.relnamespace = 'aoer_adoption'::regnamespace
    LOOP
        EXECUTE format('ALTER PUBLICATION %I ADD TABLE public.%I', old.pubname, old.relname);
        -- A partitioned table (0014) is published under its own name, not its months'.
        IF (SELECT relkind FROM pg_class WHERE oid = format('public.%I', old.relname)::regclass)
           = 'p' THEN
            EXECUTE format('ALTER PUBLICATION %I SET (publish_via_partition_root = true)',
                           old.pubname);
        END IF;
    END LOOP;
    -- Realtime set up for updates and deletes under RLS wants whole old rows.
    FOR old IN
        SELECT c.relname
        FROM pg_class c
        WHERE c.relnamespace = 'aoer_adoption'::regnamespace AND c.relreplident = 'f'
    LOOP
        EXECUTE format('ALTER TABLE public.%I REPLICA IDENTITY FULL', old.relname);
    END LOOP;
END
$$;

-- name: adoption_drop_aside
DROP SCHEMA aoer_adoption CASCADE;
