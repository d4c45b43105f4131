-- Organisations (dealer groups, agencies), the org claim in Row Level Security, and the audit
-- log (DESIGN §12).
--
-- The policy pattern: a tenant-owned table is protected by calling
--     SELECT aoer_protect_tenant_table('some_table', 'tenant_id');
-- once in its migration. The function enables RLS and (re)creates one policy,
-- `<table>_tenant_or_org`, admitting a row when the claims name its tenant (`tenant_id`) or
-- the organisation its tenant belongs to (`org_id`). `aoer_app` keeps its all-rows policy
-- (0007, added by aoer_sync_app_privileges at every migrate).

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Names are unique ignoring case and surrounding blanks ("Acme Motors" = " acme motors").
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(btrim(name)));

ALTER TABLE tenants ADD COLUMN org_id uuid REFERENCES organizations (id) ON DELETE RESTRICT;
CREATE INDEX tenants_org_idx ON tenants (org_id, id) WHERE org_id IS NOT NULL;

-- The organisation id of the request's claims; NULL when none is set.
CREATE FUNCTION aoer_claimed_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'org_id')::uuid
$$;

-- A tenant row is visible to its own tenant and to its organisation.
DROP POLICY tenants_own_row ON tenants;
CREATE POLICY tenants_tenant_or_org ON tenants
    USING (id = aoer_claimed_tenant_id() OR org_id = aoer_claimed_org_id())
    WITH CHECK (id = aoer_claimed_tenant_id() OR org_id = aoer_claimed_org_id());

-- Protect a table whose `tenant_column` references tenants(id): RLS on, one policy for the
-- tenant and organisation claims. The organisation arm is a semi-join against `tenants` (itself
-- limited by the policy above), so a scan of many tenants' rows hashes the organisation's
-- tenant ids once instead of probing per row. Idempotent.
CREATE FUNCTION aoer_protect_tenant_table(tbl regclass, tenant_column name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    policy name := (SELECT relname FROM pg_class WHERE oid = tbl) || '_tenant_or_org';
    rule text := format(
        '%1$I = aoer_claimed_tenant_id() OR %1$I IN ('
        'SELECT t.id FROM tenants t WHERE t.org_id = aoer_claimed_org_id())',
        tenant_column
    );
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', policy, tbl);
    EXECUTE format('CREATE POLICY %I ON %s USING (%s) WITH CHECK (%s)', policy, tbl, rule, rule);
END
$$;

DROP POLICY aiv_raw_signals_own_rows ON aiv_raw_signals;
DROP POLICY aoer_summary_own_rows ON aoer_summary;
DROP POLICY metrics_events_own_rows ON metrics_events;
DROP POLICY aoer_queue_own_rows ON aoer_queue;
DROP POLICY aoer_failures_own_rows ON aoer_failures;
SELECT aoer_protect_tenant_table('aiv_raw_signals', 'dealer_id');
SELECT aoer_protect_tenant_table('aoer_summary', 'tenant_id');
SELECT aoer_protect_tenant_table('metrics_events', 'tenant_id');
SELECT aoer_protect_tenant_table('aoer_queue', 'tenant_id');
SELECT aoer_protect_tenant_table('aoer_failures', 'tenant_id');

GRANT SELECT ON organizations TO aoer_tenant;
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_own_row ON organizations
    USING (id = aoer_claimed_org_id()
           OR id = (SELECT t.org_id FROM tenants t WHERE t.id = aoer_claimed_tenant_id()));

-- One row per sensitive operation (DESIGN §12). Append-only for the application's roles:
-- aoer_app and aoer_tenant may INSERT and SELECT, never UPDATE or DELETE (0007's rule below).
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text NOT NULL,
    role       text NOT NULL,
    org_id     uuid,
    tenant_id  uuid,
    action     text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]*$'),
    target     text,
    details    jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip         inet
);
-- Newest first, overall and per organisation / tenant / action (keyset on id).
CREATE INDEX audit_log_org_idx ON audit_log (org_id, id DESC) WHERE org_id IS NOT NULL;
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id DESC) WHERE tenant_id IS NOT NULL;
CREATE INDEX audit_log_action_idx ON audit_log (action, id DESC);

-- Rows are never changed or removed, whoever connects (the owner may drop the trigger on purpose).
CREATE FUNCTION aoer_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION aoer_audit_log_append_only();

GRANT SELECT, INSERT ON audit_log TO aoer_tenant;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
-- An organisation reads its own rows (a tenant's claims, its tenant's, though no endpoint
-- shows them); a scoped request may append rows about its own scope.
CREATE POLICY audit_log_tenant_or_org ON audit_log
    USING (org_id = aoer_claimed_org_id() OR tenant_id = aoer_claimed_tenant_id())
    WITH CHECK (org_id = aoer_claimed_org_id() OR tenant_id = aoer_claimed_tenant_id());

CREATE OR REPLACE FUNCTION aoer_app_privileges(relation name, kind "char") RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN kind IN ('v', 'm') THEN ARRAY['SELECT']
        WHEN kind = 'S' THEN ARRAY['USAGE']
        WHEN relation = 'aoer_schema_migrations' THEN ARRAY['SELECT']  -- /readyz reads it
        WHEN relation IN ('model_audit', 'audit_log') THEN ARRAY['INSERT', 'SELECT']
        WHEN relation = 'model_weights' THEN ARRAY['INSERT', 'SELECT', 'UPDATE']
        ELSE ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']
    END
$$;
