-- A tenant key an organisation issued stops working when the tenant leaves that organisation.
--
-- An organisation may create `tenant` keys for its dealerships (DESIGN §12). Such a key was
-- tied only to its tenant, so after the tenant moved to another organisation the old one's
-- key kept every right on it (summary, history, signals, enqueue, the live stream) while the
-- old organisation could no longer list or revoke it: "a tenant moved to another organisation
-- disappears from the old one at once" held for tokens, not for those keys. Keys now record
-- the organisation that issued them, and moving a tenant revokes its keys issued by any other
-- organisation than the one it moves into (tenants.sql, move_tenant), audited as key.revoke.
ALTER TABLE api_keys
    ADD COLUMN issued_by_org uuid REFERENCES organizations (id) ON DELETE SET NULL;

-- The keys issued before this: the audit log has who created each (key.create by an `org`
-- caller names its organisation: an organisation only ever creates keys for its own tenants).
UPDATE api_keys k
   SET issued_by_org = a.org_id
  FROM audit_log a
 WHERE a.action = 'key.create' AND a.role = 'org' AND a.target = k.id::text
   AND k.scope = 'tenant' AND a.org_id IS NOT NULL;
