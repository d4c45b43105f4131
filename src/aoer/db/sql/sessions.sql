-- name: consume_login
-- Take a one-time login link: the primary key lets exactly one replica's insert win; the
-- others (and every later try) get no row.
INSERT INTO aoer_sessions (id, kind, subject, role, tenant_id, expires_at)
VALUES (%(id)s, 'login', %(subject)s, %(role)s, %(tenant_id)s, %(expires_at)s)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: login_used
SELECT EXISTS (SELECT 1 FROM aoer_sessions WHERE id = %(id)s AND kind = 'login') AS used;

-- name: open_session
INSERT INTO aoer_sessions (id, kind, subject, role, tenant_id, expires_at)
VALUES (%(id)s, 'session', %(subject)s, %(role)s, %(tenant_id)s, %(expires_at)s)
RETURNING id;

-- name: revoke_session
-- Sign one session out; no row when it is unknown or was already revoked.
UPDATE aoer_sessions SET revoked_at = now()
WHERE id = %(id)s AND kind = 'session' AND revoked_at IS NULL
RETURNING id;

-- name: revoke_sessions
-- Sign out every live session of a tenant, of a subject, or (both NULL) everyone.
UPDATE aoer_sessions SET revoked_at = now()
WHERE kind = 'session' AND revoked_at IS NULL AND expires_at > now()
  AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
  AND (%(subject)s::text IS NULL OR subject = %(subject)s::text)
RETURNING id;

-- name: revoked_sessions
-- What every API process keeps in memory: revoked sessions whose token still verifies.
SELECT id, expires_at FROM aoer_sessions
WHERE revoked_at IS NOT NULL AND expires_at > now() - make_interval(secs => %(leeway_s)s);

-- name: live_sessions
SELECT id, kind, subject, role, tenant_id, created_at, expires_at, revoked_at
FROM aoer_sessions
WHERE kind = 'session' AND revoked_at IS NULL AND expires_at > now()
ORDER BY created_at DESC
LIMIT %(limit)s;

-- name: delete_expired_sessions
-- Retention: one batch of rows whose token expired (a used link's row outlives its link).
DELETE FROM aoer_sessions
WHERE id IN (SELECT id FROM aoer_sessions
             WHERE expires_at < now() - make_interval(secs => %(leeway_s)s)
             LIMIT %(limit)s);
