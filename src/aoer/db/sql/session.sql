-- name: enter_tenant_scope
-- Inside a transaction: act as the non-owner role with the caller's JWT claims, so Row Level
-- Security limits every following statement to the claimed tenant (both reset at its end).
SELECT set_config('role', 'aoer_tenant', true) AS role,
       set_config('request.jwt.claims', %(claims)s, true) AS claims;

-- name: ping
SELECT 1 AS ok;

-- name: database_name
-- Names this deployment's keys in a Redis that other deployments may share.
SELECT current_database() AS name;
