-- Alerts (DESIGN §13): rules that watch tenants, the webhook endpoints they notify, the alerts
-- raised, and one delivery row per alert and channel.
--
-- An alert is written in the transaction of the recompute (or job failure) that caused it,
-- with a unique `dedup_key` per (rule, tenant, transition): the same transition seen twice
-- (a retried or replayed batch) inserts once; recomputes of one tenant are serialised by
-- their lock on its summary, so the second compares with the first's result.
-- Deliveries are a small queue of their own: claimed with SKIP LOCKED under a lease (the
-- claim moves `next_attempt_at` past the lease, so a worker that dies mid-send leaves the row
-- due again when the lease runs out), retried with exponential backoff, `failed` after the
-- retry window.

-- Webhook receivers. `org_id` NULL: an administrator's endpoint (no scoped caller sees it).
CREATE TABLE alert_endpoints (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      uuid REFERENCES organizations (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (url ~* '^https?://[^/?#\s]+'),
    secret      text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/=]{16,}$'),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);
CREATE INDEX alert_endpoints_org_idx ON alert_endpoints (org_id) WHERE org_id IS NOT NULL;

CREATE TABLE alert_rules (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    scope         text NOT NULL CHECK (scope IN ('org', 'tenant')),
    org_id        uuid REFERENCES organizations (id) ON DELETE CASCADE,
    tenant_id     uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('risk_level_up', 'grade_down', 'score_drop',
                                                'stale_data', 'job_failed')),
    -- score_drop: {"points": p, "days": d}; stale_data: {"days": d}; the others: {}.
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    endpoint_ids  uuid[] NOT NULL DEFAULT '{}',
    emails        text[] NOT NULL DEFAULT '{}',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,
    CHECK (scope <> 'org' OR (org_id IS NOT NULL AND tenant_id IS NULL)),
    CHECK (scope <> 'tenant' OR (tenant_id IS NOT NULL AND org_id IS NULL)),
    CHECK (kind <> 'score_drop' OR ((params ->> 'points')::numeric > 0
                                    AND (params ->> 'days')::integer > 0)),
    CHECK (kind <> 'stale_data' OR (params ->> 'days')::integer > 0)
);
-- A batch finds the rules of its tenants and of their organisations through these.
CREATE INDEX alert_rules_tenant_idx ON alert_rules (tenant_id) WHERE active AND tenant_id IS NOT NULL;
CREATE INDEX alert_rules_org_idx ON alert_rules (org_id) WHERE active AND org_id IS NOT NULL;

CREATE TABLE alerts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id     uuid REFERENCES alert_rules (id) ON DELETE SET NULL,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    -- rule:tenant:<the job whose recompute crossed the rule> (job_failed: rule:tenant:failed:<job>)
    dedup_key   text NOT NULL UNIQUE,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_tenant_created_idx ON alerts (tenant_id, created_at DESC);
CREATE INDEX alerts_created_idx ON alerts (created_at DESC);
CREATE INDEX alerts_rule_idx ON alerts (rule_id) WHERE rule_id IS NOT NULL;

CREATE TABLE alert_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_id          uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id       uuid REFERENCES alert_endpoints (id) ON DELETE SET NULL,
    email             text,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    locked_by         text,
    last_status_code  integer,
    last_error        text,
    delivered_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'pending' OR endpoint_id IS NOT NULL OR email IS NOT NULL)
);
-- The delivery worker's claim walks this index: due pending rows, oldest first.
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_alert_idx ON alert_deliveries (alert_id);
CREATE INDEX alert_deliveries_endpoint_idx ON alert_deliveries (endpoint_id) WHERE status = 'pending';

-- Row Level Security. Tenant-owned rows: the tenant and its organisation. Organisation-owned
-- rows (endpoints, organisation-wide rules): that organisation. A tenant's scoped session reads
-- its own tenant's rules, alerts and deliveries (the API lets it only read them).
SELECT aoer_protect_tenant_table('alert_rules', 'tenant_id');
SELECT aoer_protect_tenant_table('alerts', 'tenant_id');
SELECT aoer_protect_tenant_table('alert_deliveries', 'tenant_id');
CREATE POLICY alert_rules_org ON alert_rules
    USING (org_id = aoer_claimed_org_id())
    WITH CHECK (org_id = aoer_claimed_org_id());
ALTER TABLE alert_endpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_endpoints_org ON alert_endpoints
    USING (org_id = aoer_claimed_org_id())
    WITH CHECK (org_id = aoer_claimed_org_id());

GRANT SELECT, INSERT, UPDATE, DELETE ON alert_endpoints, alert_rules TO aoer_tenant;
GRANT SELECT ON alerts, alert_deliveries TO aoer_tenant;
