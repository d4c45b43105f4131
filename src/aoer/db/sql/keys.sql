-- name: create_api_key
INSERT INTO api_keys (prefix, hash, scope, org_id, tenant_id, name, created_by, expires_at,
                      issued_by_org)
VALUES (%(prefix)s, %(hash)s, %(scope)s, %(org_id)s, %(tenant_id)s, %(name)s, %(created_by)s,
        %(expires_at)s, %(issued_by_org)s)
RETURNING id, prefix, scope, org_id, tenant_id, name, created_by, created_at, expires_at,
          revoked_at, last_used_at;

-- name: api_key_by_hash
-- What authenticating a key needs, by the hash of the presented key (unique index).
SELECT id, scope, org_id, tenant_id, expires_at, revoked_at
FROM api_keys
WHERE hash = %(hash)s;

-- name: list_api_keys
-- Newest first, with the tenant's name where the caller sees the tenant. Of one organisation:
-- its own keys, the tenant keys it issued (wherever the tenant went since) and the keys an
-- administrator issued for its tenants; never a key another organisation issued (RLS again,
-- 0041).
SELECT k.id, k.prefix, k.scope, k.org_id, k.tenant_id, k.name, k.created_by, k.created_at,
       k.expires_at, k.revoked_at, k.last_used_at, t.name AS tenant_name
FROM api_keys k
LEFT JOIN tenants t ON t.id = k.tenant_id
WHERE (%(org_id)s::uuid IS NULL OR k.org_id = %(org_id)s::uuid
       OR k.issued_by_org = %(org_id)s::uuid
       OR (k.issued_by_org IS NULL
           AND k.tenant_id IN (SELECT t.id FROM tenants t WHERE t.org_id = %(org_id)s::uuid)))
ORDER BY k.created_at DESC, k.id
LIMIT %(limit)s;

-- name: get_api_key
SELECT id, prefix, scope, org_id, tenant_id, name, created_by, created_at, expires_at,
       revoked_at, last_used_at
FROM api_keys
WHERE id = %(id)s;

-- name: api_key_names
-- The names of these keys that have one (those the caller sees), in one statement.
SELECT id, name FROM api_keys WHERE id = ANY (%(ids)b::uuid[]) AND name IS NOT NULL;

-- name: revoke_api_key
-- Revoke once; no row when it is unknown (or invisible under the caller's scope) or was
-- already revoked.
UPDATE api_keys SET revoked_at = now()
WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id, prefix, scope, org_id, tenant_id, name, created_by, created_at, expires_at,
          revoked_at, last_used_at;

-- name: revoked_api_keys
-- Which of these keys were revoked (what every API process reloads for the keys it knows).
SELECT id FROM api_keys
WHERE id = ANY (%(ids)s::uuid[]) AND revoked_at IS NOT NULL;

-- name: touch_api_keys
-- Record when keys were last used: one statement for a batch, never moving a time back.
UPDATE api_keys k SET last_used_at = u.at
FROM unnest(%(ids)s::uuid[], %(ats)s::timestamptz[]) AS u (id, at)
WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at);
