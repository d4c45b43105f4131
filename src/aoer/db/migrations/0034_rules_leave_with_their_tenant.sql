-- A dealership's alert rules that one organisation made leave with the dealership (as its
-- keys do since 0029). A rule watching one tenant was made under the organisation the tenant
-- was in then, with that organisation's endpoints and e-mail addresses: after a move it kept
-- firing, and the organisation the dealership had left went on receiving its scores. Now
-- `owner_org` records that organisation, and moving the tenant elsewhere deletes the rule in
-- the same statement (db/sql/tenants.sql, move_tenant; each audited as alert_rule.delete).
-- Rules made while the tenant was in no organisation (an administrator's) stay.
ALTER TABLE alert_rules ADD COLUMN owner_org uuid REFERENCES organizations (id) ON DELETE SET NULL;

-- Existing rules: an organisation's rule is its own; a tenant's rule belongs to the
-- organisation its alert_rule.create audit row names (the tenant's at the time), else to the
-- tenant's organisation now (before this migration a move left rules where they were).
UPDATE alert_rules r
   SET owner_org = coalesce(r.org_id,
                            (SELECT a.org_id FROM audit_log a
                             WHERE a.action = 'alert_rule.create' AND a.target = r.id::text
                             ORDER BY a.at DESC LIMIT 1),
                            (SELECT t.org_id FROM tenants t WHERE t.id = r.tenant_id));
