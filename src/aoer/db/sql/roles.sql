-- name: login_role
-- The attributes `aoer migrate --app-role` checks; no row when the role does not exist.
-- `owner_rights`: the role is, or has the rights of, the owner of this database or of a
-- relation in schema public (then it would not be least privilege).
SELECT r.rolsuper AS superuser, r.rolcanlogin AS login, r.rolinherit AS inherit,
       r.rolcreatedb AS createdb, r.rolcreaterole AS createrole,
       r.rolreplication AS replication, r.rolbypassrls AS bypassrls,
       pg_has_role(r.oid, d.datdba, 'USAGE')
           OR EXISTS (SELECT 1 FROM pg_class c
                      WHERE c.relnamespace = 'public'::regnamespace
                        AND pg_has_role(r.oid, c.relowner, 'USAGE')) AS owner_rights,
       pg_has_role(r.oid, %(group)s, 'MEMBER') AS member
FROM pg_roles r
JOIN pg_database d ON d.datname = current_database()
WHERE r.rolname = %(name)s;

-- name: password_encryption
SELECT current_setting('password_encryption') AS algorithm;
