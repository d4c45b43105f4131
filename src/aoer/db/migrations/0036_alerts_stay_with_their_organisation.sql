-- An alert belongs to the organisation whose rule raised it, as the rule did (0034). Alerts
-- and their deliveries were tenant-owned rows only, so after a move the organisation the
-- dealership went to read the alerts its old organisation's rules had raised (their rule ids,
-- that organisation's endpoint ids, its receivers' errors), and the organisation it left lost
-- sight of the deliveries still retrying to its own endpoints.
--
-- `alerts.owner_org`: the organisation the raising rule serves when it is raised: the one
-- that made it (alert_rules.owner_org), else the organisation an organisation-wide rule
-- watches; NULL for an administrator's tenant rule, whose alerts stay with the dealership
-- as the rule does. Set by a trigger from the rule, so every writer (aoer_raise_alerts, from
-- a batch or from update_aoer_summary) records it without restating the statement.
--
-- Who reads what (scoped requests run as aoer_tenant; aoer_app reads every row):
-- * an organisation: the alerts its rules raised, of any dealership, and the unowned alerts
--   of its own dealerships;
-- * a tenant: its alerts that are unowned or owned by its current organisation;
-- * a delivery is seen with its alert.
ALTER TABLE alerts ADD COLUMN owner_org uuid REFERENCES organizations (id) ON DELETE SET NULL;
CREATE INDEX alerts_owner_created_idx ON alerts (owner_org, created_at DESC)
    WHERE owner_org IS NOT NULL;

CREATE FUNCTION aoer_alert_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.owner_org := (SELECT coalesce(r.owner_org, r.org_id)
                      FROM alert_rules r WHERE r.id = NEW.rule_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER alerts_owner BEFORE INSERT ON alerts
    FOR EACH ROW WHEN (NEW.owner_org IS NULL AND NEW.rule_id IS NOT NULL)
    EXECUTE FUNCTION aoer_alert_owner();

-- Alerts raised before: from their rule; a rule deleted since (a move deletes them, 0034) is
-- named by the alert's dedup key (`<rule>:<tenant>:...`), and its create audit row says who
-- made it, as 0034 read it: an organisation's caller, or an organisation-wide rule.
UPDATE alerts a
   SET owner_org = coalesce(r.owner_org, r.org_id)
  FROM alert_rules r
 WHERE r.id = a.rule_id;
UPDATE alerts a
   SET owner_org = made.org_id
  FROM (SELECT DISTINCT ON (l.target) l.target, l.org_id
        FROM audit_log l
        WHERE l.action = 'alert_rule.create' AND l.org_id IS NOT NULL
          AND (l.role = 'org' OR l.tenant_id IS NULL)
        ORDER BY l.target, l.at DESC) made
 WHERE a.rule_id IS NULL AND a.owner_org IS NULL
   AND made.target = split_part(a.dedup_key, ':', 1);

CREATE POLICY alerts_owner ON alerts TO aoer_tenant
    USING (owner_org = aoer_claimed_org_id());
CREATE POLICY alerts_owner_only ON alerts AS RESTRICTIVE TO aoer_tenant
    USING (current_user <> 'aoer_tenant'
           OR owner_org IS NULL
           OR owner_org = coalesce(aoer_claimed_org_id(),
                                   (SELECT t.org_id FROM tenants t
                                    WHERE t.id = aoer_claimed_tenant_id())));

-- A delivery is visible exactly when its alert is (the alert's policies decide).
DROP POLICY alert_deliveries_tenant_or_org ON alert_deliveries;
CREATE POLICY alert_deliveries_with_their_alert ON alert_deliveries
    USING (EXISTS (SELECT 1 FROM alerts a WHERE a.id = alert_id));
