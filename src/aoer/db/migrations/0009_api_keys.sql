-- API keys (DESIGN §12): created once and shown once, stored as a SHA-256 hash, scoped
-- (admin, service, org, tenant), expiring and revocable. Every API process keeps the keys it
-- has seen in memory and reloads their revocations every few seconds (aoer.api.keys).
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    prefix        text NOT NULL CHECK (length(prefix) BETWEEN 5 AND 32),
    hash          text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    scope         text NOT NULL CHECK (scope IN ('admin', 'service', 'org', 'tenant')),
    org_id        uuid REFERENCES organizations (id) ON DELETE RESTRICT,
    tenant_id     uuid REFERENCES tenants (id) ON DELETE CASCADE,
    name          text CHECK (length(name) <= 200),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK ((scope = 'org') = (org_id IS NOT NULL)),
    CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL)),
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id) WHERE org_id IS NOT NULL;
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id) WHERE tenant_id IS NOT NULL;

-- Tenant keys follow the tenant (its own claim, its organisation's); an organisation also sees
-- and revokes its own organisation-wide keys.
GRANT SELECT, INSERT, UPDATE ON api_keys TO aoer_tenant;
SELECT aoer_protect_tenant_table('api_keys', 'tenant_id');
CREATE POLICY api_keys_own_org ON api_keys
    USING (org_id = aoer_claimed_org_id())
    WITH CHECK (org_id = aoer_claimed_org_id());

-- Dashboard sessions of organisation users; their sessions follow the same policy pattern as
-- every other tenant-owned table.
ALTER TABLE aoer_sessions DROP CONSTRAINT aoer_sessions_role_check;
ALTER TABLE aoer_sessions ADD CONSTRAINT aoer_sessions_role_check
    CHECK (role IN ('admin', 'service', 'org', 'tenant'));
DROP POLICY aoer_sessions_own_rows ON aoer_sessions;
SELECT aoer_protect_tenant_table('aoer_sessions', 'tenant_id');
