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

-- name: local_timeouts
-- For the rest of this transaction only: its lock wait and idle limits (milliseconds,
-- 0 = none), overriding the pool's (a training run thinks between statements; the tick
-- must not queue up behind a lock).
SELECT set_config('lock_timeout', %(lock_timeout_ms)s::text, true) AS lock_timeout,
       set_config('idle_in_transaction_session_timeout', %(idle_ms)s::text, true) AS idle,
       set_config('statement_timeout', %(statement_timeout_ms)s::text, true) AS statement;
