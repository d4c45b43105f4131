-- name: create_organization
INSERT INTO organizations (name) VALUES (btrim(%(name)s))
RETURNING id, name, created_at;

-- name: list_organizations
-- With how many dealerships each holds (visible ones only, under a scope).
SELECT o.id, o.name, o.created_at,
       (SELECT count(*) FROM tenants t WHERE t.org_id = o.id) AS tenants
FROM organizations o
ORDER BY lower(o.name), o.id;

-- name: get_organization
SELECT o.id, o.name, o.created_at,
       (SELECT count(*) FROM tenants t WHERE t.org_id = o.id) AS tenants
FROM organizations o
WHERE o.id = %(id)s;

-- name: tenant_org
-- The organisation a tenant belongs to (NULL: none); no row for an unknown tenant.
SELECT org_id FROM tenants WHERE id = %(tenant_id)s;

-- name: org_exists
SELECT EXISTS (SELECT 1 FROM organizations WHERE id = %(id)s) AS found;

-- name: organization_named
SELECT o.id, o.name, o.created_at,
       (SELECT count(*) FROM tenants t WHERE t.org_id = o.id) AS tenants
FROM organizations o
WHERE lower(btrim(o.name)) = lower(btrim(%(name)s));
