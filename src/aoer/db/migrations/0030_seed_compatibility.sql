-- What the old Node/Supabase system's users and data need to find in this schema (DESIGN §2,
-- §7, §17), adopted in place or not: (1) roles that are not ours read their own tenants' rows
-- and do nothing else; (2) the old system's score history reads as ours; (3) the views and
-- get_aoer_queue_status answer as the old ones did.
--
-- (1) Roles that are not ours.
--
-- On Supabase, `ALTER DEFAULT PRIVILEGES` gives `anon`, `authenticated` and `service_role`
-- ALL on every table, sequence and function the migrating role creates in schema public, and
-- an adopted database's `authenticated` held the old migration's INSERT/UPDATE grants, which
-- only its SELECT-only policies kept from writing. Our `*_tenant_or_org` policies admit every
-- command for the claimed tenant's rows, tables such as `aoer_queue_state` have no RLS at
-- all, and `REVOKE ... FROM PUBLIC` leaves explicit grants standing: a tenant's PostgREST
-- session could rewrite its score, pause every worker, or drop the score history through a
-- maintenance function.
--
-- The mechanism: one rule, `aoer_other_role_privileges`, says the most a role that is not
-- ours may hold on a relation of ours -- SELECT on the old system's tables, `tenants` and the
-- two views, which RLS and the claims limit to its own tenants, and, for a role that bypasses
-- RLS anyway (Supabase's `service_role`, the deployment's admin key), the row writes it was
-- given on those tables, so the old scripts' `rpc('queue_tenant_recompute')` keeps working.
-- Nothing else: no TRUNCATE (which RLS does not stop), no internal table, no sequence, no
-- partition. `aoer_confine_other_roles()` revokes whatever goes beyond the rule, and every
-- explicit EXECUTE grant to such a role except on the four functions of the old system's
-- API (DESIGN §17; they run with the caller's rights). Functions keep what PUBLIC holds as
-- their migrations set it: the maintenance functions revoked it, and the storing helper
-- behind update_aoer_summary checks the claims itself. `aoer migrate` runs the confinement
-- after every migration run (a later migration's objects get the default privileges again),
-- and a new monthly partition is confined as it is created.
--
-- Ours: the owner (and roles that hold its rights), `aoer_app` and its members, and
-- `aoer_tenant`; their grants are the migrations' and aoer_sync_app_privileges' business.

CREATE FUNCTION aoer_other_role_privileges(relation name, kind "char", bypassrls boolean)
RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN kind IN ('v', 'm') AND relation IN ('v_aoer_dashboard', 'v_aoer_queue_status')
            THEN ARRAY['SELECT']
        WHEN kind IN ('r', 'p')
             AND relation IN ('tenants', 'aiv_raw_signals', 'aoer_summary', 'metrics_events',
                              'aoer_queue', 'aoer_failures')
            THEN CASE WHEN bypassrls THEN ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']
                      ELSE ARRAY['SELECT'] END
        ELSE '{}'::text[]
    END
$$;

-- Whether a grantee (an aclitem's oid; 0 is PUBLIC) is one of this schema's roles for an
-- object owned by `owner`.
CREATE FUNCTION aoer_is_own_role(grantee oid, owner oid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT grantee <> 0
           AND (grantee = owner
                OR pg_has_role(grantee, owner, 'USAGE')
                OR grantee IN ('aoer_app'::regrole::oid, 'aoer_tenant'::regrole::oid)
                OR pg_has_role(grantee, 'aoer_app', 'MEMBER'))
$$;

-- Revoke from the roles that are not ours what the rule does not give them on `rel`;
-- returns how many privileges it revoked.
CREATE FUNCTION aoer_confine_relation(rel regclass) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    acl record;
    revoked integer := 0;
BEGIN
    FOR acl IN
        SELECT a.privilege_type,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee,
               CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind
        FROM pg_class c
        CROSS JOIN LATERAL aclexplode(c.relacl) a
        LEFT JOIN pg_roles r ON r.oid = a.grantee
        WHERE c.oid = rel
          AND NOT aoer_is_own_role(a.grantee, c.relowner)
          AND NOT a.privilege_type = ANY (aoer_other_role_privileges(
                  c.relname, c.relkind, coalesce(r.rolbypassrls, false)))
    LOOP
        EXECUTE format('REVOKE %s ON %s %s FROM %s', acl.privilege_type, acl.kind, rel,
                       acl.grantee);
        revoked := revoked + 1;
    END LOOP;
    RETURN revoked;
END
$$;

-- Confine every relation and function of ours in schema public; returns how many privileges
-- it revoked (0: already confined), so running it twice is a no-op.
CREATE FUNCTION aoer_confine_other_roles() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    rel regclass;
    fn record;
    revoked integer := 0;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND pg_has_role(c.relowner, 'USAGE')
        ORDER BY c.relname
    LOOP
        revoked := revoked + aoer_confine_relation(rel);
    END LOOP;
    FOR fn IN
        SELECT p.oid::regprocedure AS id, quote_ident(r.rolname) AS grantee
        FROM pg_proc p
        CROSS JOIN LATERAL aclexplode(p.proacl) a
        JOIN pg_roles r ON r.oid = a.grantee
        WHERE p.pronamespace = 'public'::regnamespace
          AND pg_has_role(p.proowner, 'USAGE')
          AND NOT aoer_is_own_role(a.grantee, p.proowner)
          AND p.proname NOT IN ('compute_aoer_for_tenant', 'update_aoer_summary',
                                'queue_tenant_recompute', 'get_aoer_queue_status')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', fn.id, fn.grantee);
        revoked := revoked + 1;
    END LOOP;
    RETURN revoked;
END
$$;

REVOKE EXECUTE ON FUNCTION aoer_confine_relation(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION aoer_confine_other_roles() FROM PUBLIC;

-- 0014's, confining the new month as it is created: it is created by the owner, so
-- Supabase's default privileges give it to anon and authenticated (TRUNCATE included).
CREATE OR REPLACE FUNCTION aoer_create_month_partition(parent regclass, month date)
RETURNS boolean
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
    PERFORM aoer_confine_relation(format('public.%I', part)::regclass);
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
REVOKE EXECUTE ON FUNCTION aoer_create_month_partition(regclass, date) FROM PUBLIC;

SELECT aoer_confine_other_roles();

-- (2) The old system's score history. Its update_aoer_summary wrote each `aoer_recompute`
-- event as {"aoer_score", "visibility_risk", "metrics"}; ours, and every reader of the history
-- (trend chart, recent recomputes, the 7/30-day changes, the score_drop alert), use
-- `aoerScore` and `visibilityRisk`. The camelCase keys are added from the old ones (a number,
-- or a string holding one), which stay as they were; `metrics` has the same name in both.
-- An adoption copies the old events in before this runs; a database adopted before 0030 gets
-- them now. Events that already carry either key are left alone.
CREATE FUNCTION aoer_json_number(value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_typeof(value) = 'number' THEN value
        WHEN jsonb_typeof(value) = 'string'
             AND value #>> '{}' ~ '^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$'
            THEN to_jsonb((value #>> '{}')::numeric)
    END
$$;

UPDATE metrics_events
SET event_data = event_data
                 || jsonb_strip_nulls(jsonb_build_object(
                        'aoerScore', aoer_json_number(event_data -> 'aoer_score'),
                        'visibilityRisk', aoer_json_number(event_data -> 'visibility_risk')))
WHERE event_type = 'aoer_recompute'
  AND jsonb_typeof(event_data) = 'object'
  AND NOT event_data ?| ARRAY['aoerScore', 'visibilityRisk']
  AND (aoer_json_number(event_data -> 'aoer_score') IS NOT NULL
       OR aoer_json_number(event_data -> 'visibility_risk') IS NOT NULL);

DROP FUNCTION aoer_json_number(jsonb);

-- (3) The two views and get_aoer_queue_status as the old migration defined them (DESIGN §2):
-- its dashboards select `aoer_grade` (0001 named it `grade`), and its queue status counts the
-- queued and processing jobs only, aged by `scheduled_at` (0001 and 0013 counted every status
-- and aged jobs by `created_at`). The old columns come first, in the old order; `tenant_name`
-- (ours) follows them. A view's columns cannot be renamed in place, so v_aoer_dashboard is
-- made again, keeping every grant it had (aoer_tenant's, and other roles' in an adopted
-- database).
DO $$
DECLARE
    acl aclitem[] := (SELECT relacl FROM pg_class WHERE oid = 'v_aoer_dashboard'::regclass);
    item record;
BEGIN
    DROP VIEW v_aoer_dashboard;
    CREATE VIEW v_aoer_dashboard WITH (security_invoker = true) AS
    SELECT s.tenant_id,
           s.aoer_score,
           s.visibility_risk,
           s.last_updated,
           s.metrics,
           aoer_grade(s.aoer_score) AS aoer_grade,
           aoer_risk_level(s.visibility_risk) AS risk_level,
           t.name AS tenant_name
    FROM aoer_summary s
    JOIN tenants t ON t.id = s.tenant_id;
    FOR item IN
        SELECT a.privilege_type,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                    ELSE quote_ident(a.grantee::regrole::text) END AS grantee
        FROM aclexplode(acl) a
        WHERE a.grantee <> (SELECT relowner FROM pg_class
                            WHERE oid = 'v_aoer_dashboard'::regclass)
    LOOP
        EXECUTE format('GRANT %s ON v_aoer_dashboard TO %s', item.privilege_type, item.grantee);
    END LOOP;
END
$$;

CREATE OR REPLACE VIEW v_aoer_queue_status WITH (security_invoker = true) AS
SELECT status,
       priority,
       count(*) AS job_count,
       min(scheduled_at) AS oldest_job,
       max(scheduled_at) AS newest_job
FROM aoer_queue
WHERE status IN ('queued', 'processing')
GROUP BY status, priority;

-- Jobs waiting and in flight by status and priority (the caller's own under claims).
CREATE OR REPLACE FUNCTION get_aoer_queue_status()
RETURNS TABLE (status varchar, priority varchar, job_count bigint, oldest_job timestamptz,
               newest_job timestamptz)
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT q.status, q.priority, count(*), min(q.scheduled_at), max(q.scheduled_at)
    FROM aoer_queue q
    WHERE q.status IN ('queued', 'processing')
    GROUP BY q.status, q.priority
    ORDER BY q.status DESC, aoer_priority_rank(q.priority) DESC
$$;
