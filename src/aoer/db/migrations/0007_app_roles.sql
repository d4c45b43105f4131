-- Least privilege for the processes that serve (README "Production roles").
--
-- Migrations run as the owner of the schema. `aoer serve` and `aoer worker` connect as a login
-- role made by `aoer migrate --app-role NAME`: neither superuser nor owner, a member of the
-- NOLOGIN group `aoer_app`, which holds exactly what they use. Not being the owner, it is
-- subject to Row Level Security: a policy per RLS table (`aoer_app_all_rows`) lets it see every
-- row (workers and admin requests work across tenants), while `aoer_tenant`, which
-- tenant-scoped requests switch to, is not a member of `aoer_app` and stays limited to the
-- claimed tenant.
--
-- Never granted to `aoer_app`: ownership or DDL (CREATE, ALTER, DROP), TRUNCATE, REFERENCES,
-- TRIGGER, writes to aoer_schema_migrations, UPDATE/DELETE of model_audit (an audit trail
-- only grows), DELETE of model_weights (every version is kept for rollback), setval on
-- sequences, and the function below that grants.

-- Roles are cluster-global and several databases may be migrated at once (see 0002).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aoer_app') THEN
        CREATE ROLE aoer_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- Tenant-scoped requests run `SET LOCAL ROLE aoer_tenant`, which needs membership.
DO $$
BEGIN
    IF NOT pg_has_role('aoer_app', 'aoer_tenant', 'MEMBER') THEN
        GRANT aoer_tenant TO aoer_app;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The rule: what `aoer_app` holds on a relation of schema public, by name and relkind. A later
-- migration whose table needs less (an append-only log, say) replaces this function; every
-- `aoer migrate` then brings the grants in line with it.
CREATE FUNCTION aoer_app_privileges(relation name, kind "char") RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN kind IN ('v', 'm') THEN ARRAY['SELECT']
        WHEN kind = 'S' THEN ARRAY['USAGE']
        WHEN relation = 'aoer_schema_migrations' THEN ARRAY['SELECT']  -- /readyz reads it
        WHEN relation = 'model_audit' THEN ARRAY['INSERT', 'SELECT']
        WHEN relation = 'model_weights' THEN ARRAY['INSERT', 'SELECT', 'UPDATE']
        ELSE ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']
    END
$$;

-- Bring `aoer_app`'s privileges in line with the rule: grant what is missing, revoke what is
-- not in it, add the all-rows policy to RLS tables that lack one, EXECUTE on the aoer_*
-- functions. Only objects the migrating role owns are touched. Returns how many changes it
-- made (0: already in line), so running it twice is a no-op. `aoer migrate` calls it after
-- applying migrations and for `--app-role`, so tables of later migrations are covered.
CREATE FUNCTION aoer_sync_app_privileges() RETURNS integer
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

-- Granting is the owner's business: nobody else may run it (PUBLIC may by default).
REVOKE EXECUTE ON FUNCTION aoer_sync_app_privileges() FROM PUBLIC;

SELECT aoer_sync_app_privileges();
