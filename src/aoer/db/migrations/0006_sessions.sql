-- Browser sessions and used login links (issue 11): one row per token id (the JWT's `jti`).
--
-- A login link is one-time across replicas and restarts: taking it inserts its id here, and
-- the primary key lets exactly one insert win. A dashboard session is a row too, so signing
-- out (or an administrator) can revoke it: every API process reloads the revoked ids every
-- few seconds. Rows are kept until the token expires; the daily retention deletes them after.
CREATE TABLE aoer_sessions (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    kind        text NOT NULL CHECK (kind IN ('login', 'session')),
    subject     text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'service', 'tenant')),
    -- No foreign key: a token may name a tenant that does not exist (yet); it grants nothing.
    tenant_id   uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK ((role = 'tenant') = (tenant_id IS NOT NULL)),
    CHECK (kind = 'session' OR revoked_at IS NULL)
);

-- What every API process reloads: revoked sessions that have not expired yet (few rows).
CREATE INDEX aoer_sessions_revoked ON aoer_sessions (expires_at) WHERE revoked_at IS NOT NULL;
-- Retention and revoking everything of a tenant or a subject.
CREATE INDEX aoer_sessions_expires_at ON aoer_sessions (expires_at);
CREATE INDEX aoer_sessions_tenant ON aoer_sessions (tenant_id) WHERE tenant_id IS NOT NULL;
CREATE INDEX aoer_sessions_subject ON aoer_sessions (subject);

-- Tenant-owned like every table with a tenant_id: a tenant's scoped session sees its own rows.
GRANT SELECT ON aoer_sessions TO aoer_tenant;
ALTER TABLE aoer_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY aoer_sessions_own_rows ON aoer_sessions
    USING (tenant_id = aoer_claimed_tenant_id())
    WITH CHECK (tenant_id = aoer_claimed_tenant_id());
