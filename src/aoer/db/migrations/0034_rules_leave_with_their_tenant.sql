-- A dealership's alert rules that one organisation made leave with the dealership (as its
-- keys do since 0029). A rule an organisation made to watch one of its tenants names its
-- endpoints and its people's addresses: after a move it kept firing, and the organisation the
-- dealership had left went on receiving its scores. Now `owner_org` records the organisation
-- that made a rule (NULL: an administrator), and moving the tenant to another organisation
-- deletes the rules another organisation made for it, in the same statement
-- (db/sql/tenants.sql, move_tenant; each audited as alert_rule.delete). An administrator's
-- rules stay: their endpoints and addresses are the administrators' (and aoer_raise_alerts
-- never sends an organisation's endpoint another organisation's dealership).
ALTER TABLE alert_rules ADD COLUMN owner_org uuid REFERENCES organizations (id) ON DELETE SET NULL;

-- Rules made before: an organisation's own rule is its own; a tenant's rule belongs to the
-- organisation that made it as its alert_rule.create audit row says (role 'org'). Made by an
-- administrator, or without an audit row: NULL, kept, as keys without an issuer are (0029).
UPDATE alert_rules r
   SET owner_org = CASE WHEN r.scope = 'org' THEN r.org_id
                        ELSE (SELECT a.org_id FROM audit_log a
                              WHERE a.action = 'alert_rule.create' AND a.target = r.id::text
                                AND a.role = 'org'
                              ORDER BY a.at DESC LIMIT 1)
                   END;

-- A tenant moved before this migration kept the rules its old organisation had made for it:
-- they go now, as the move would have taken them, each recorded in that organisation's trail.
WITH stray AS (
    DELETE FROM alert_rules r
    USING tenants t
    WHERE r.scope = 'tenant' AND t.id = r.tenant_id
      AND r.owner_org IS NOT NULL AND r.owner_org IS DISTINCT FROM t.org_id
    RETURNING r.id, r.tenant_id, r.owner_org
)
INSERT INTO audit_log (actor, role, action, org_id, tenant_id, target, details)
SELECT 'migration:0034', 'admin', 'alert_rule.delete', s.owner_org, s.tenant_id, s.id::text,
       jsonb_build_object('reason', 'the tenant had left the organisation that made the rule')
FROM stray s;
