-- An organisation's audit trail shows its dealerships leaving too. A move is one audit row
-- (tenant.move, org_id the organisation it went to, details {"from", "to"}), so the
-- organisation it left saw the keys and alert rules revoked with it (0029, 0034) but not the
-- move that caused them. Now its claims also read the moves whose `from` it is (the API's
-- ?orgId= filter for administrators asks the same: db/sql/audit.sql, list_audit).
ALTER POLICY audit_log_tenant_or_org ON audit_log
    USING (org_id = aoer_claimed_org_id() OR tenant_id = aoer_claimed_tenant_id()
           OR (action = 'tenant.move'
               AND details ->> 'from' = aoer_claimed_org_id()::text));
