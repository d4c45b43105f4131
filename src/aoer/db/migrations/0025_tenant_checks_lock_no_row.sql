-- The two row triggers of 0024 fire AFTER the row is written, not BEFORE.
--
-- For a table with a BEFORE UPDATE row trigger, PostgreSQL fetches every row an UPDATE changes
-- *locked* (the lock written into the tuple and to the WAL) before it looks at the trigger's
-- column list or its WHEN clause. So `aoer_queue_moved_tenant_exists`, which fires only for an
-- UPDATE that sets tenant_id, wrote one more row lock a job into every update of the queue
-- that had not locked its rows already (giving jobs back, the console's retries), and
-- `aoer_tenants_keep_id` one into every update of a tenant (a rename, a deactivation). The
-- claim and the completion lock their rows first (SKIP LOCKED, id order), so for them the
-- extra lock was free: a refresh is unchanged (bench/README.md, "Row locks a job, counted").
-- An AFTER row trigger's old row is fetched without a lock (the foreign key's own triggers,
-- which 0024 replaced, were AFTER triggers); the check and its error are the same, and an
-- error raised in an AFTER row trigger undoes its statement as one raised BEFORE does.

DROP TRIGGER aoer_queue_moved_tenant_exists ON aoer_queue;

CREATE TRIGGER aoer_queue_moved_tenant_exists
    AFTER UPDATE OF tenant_id ON aoer_queue
    FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION aoer_queue_check_moved_tenant();

DROP TRIGGER aoer_tenants_keep_id ON tenants;

CREATE TRIGGER aoer_tenants_keep_id
    AFTER UPDATE OF id ON tenants
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION aoer_tenants_keep_id();
