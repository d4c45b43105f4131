-- name: record_audit
-- One sensitive operation (DESIGN §12). Inside the operation's own transaction, so the trail
-- and the change land together or not at all.
INSERT INTO audit_log (actor, role, org_id, tenant_id, action, target, details, ip)
VALUES (%(actor)s, %(role)s, %(org_id)s, %(tenant_id)s, %(action)s, %(target)s,
        %(details)s, %(ip)s)
RETURNING id;

-- name: list_audit
-- Newest first, keyset-paged on id; every filter optional. An organisation's scope (RLS)
-- limits it further to its own rows. An organisation's rows include the moves of tenants out
-- of it (migration 0035): a second branch, so that each reads its own index
-- (audit_log_org_idx; audit_log_action_idx for the moves) instead of one OR scanning both.
SELECT id, at, actor, role, org_id, tenant_id, action, target, details, host(ip) AS ip
FROM (
    (SELECT *
     FROM audit_log
     WHERE (%(org_id)s::uuid IS NULL OR org_id = %(org_id)s::uuid)
       AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
       AND (%(action)s::text IS NULL OR action = %(action)s::text)
       AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
     ORDER BY id DESC
     LIMIT %(limit)s)
    UNION ALL
    (SELECT *
     FROM audit_log
     WHERE %(org_id)s::uuid IS NOT NULL
       AND action = 'tenant.move' AND details ->> 'from' = %(org_id)s::text
       AND org_id IS DISTINCT FROM %(org_id)s::uuid
       AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
       AND (%(action)s::text IS NULL OR action = %(action)s::text)
       AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
     ORDER BY id DESC
     LIMIT %(limit)s)
) entries
ORDER BY id DESC
LIMIT %(limit)s;
