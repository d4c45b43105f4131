-- A tenant key stays with the organisation that issued it when its tenant moves away.
--
-- Moving a dealership revokes the keys another organisation issued for it (0029). Those
-- revoked keys then showed in the new organisation's key list, with the old one's key name
-- and the id of the old one's integrator key as `created_by`, and vanished from the list of
-- the organisation that made them (it saw tenant keys only through the tenant). Now an
-- organisation sees the tenant keys it issued wherever the tenant went, and never those
-- another organisation issued; keys an administrator issued (`issued_by_org` empty) still
-- follow their tenant.
CREATE POLICY api_keys_issuer ON api_keys FOR SELECT TO aoer_tenant
    USING (issued_by_org = aoer_claimed_org_id());
CREATE POLICY api_keys_issuer_only ON api_keys AS RESTRICTIVE TO aoer_tenant
    USING (issued_by_org IS NULL
           OR aoer_claimed_org_id() IS NULL
           OR issued_by_org = aoer_claimed_org_id());
