-- A job's tenant is checked once per statement instead of once per row (issue 16: the tick).
--
-- The foreign key `aoer_queue.tenant_id -> tenants` ran one query per inserted job, each
-- locking the tenant's row (`FOR KEY SHARE`, written into the tenant's tuple: its heap page
-- dirtied): a third of every tick chunk (110-170 ms of 390-570 ms for 20,000 jobs, 100,000
-- tenants), and at 1,000,000 tenants a write of every page of `tenants` per tick. It did two
-- things, and both are kept:
--
-- 1. *No job names an unknown tenant.* An AFTER INSERT statement trigger checks the
--    statement's new jobs against `tenants` in one anti-join, and raises what the foreign key
--    raised (SQLSTATE 23503, constraint `aoer_queue_tenant_id_fkey`, the key in the detail).
--    An UPDATE that moves a job to another tenant is checked by a row trigger that only such
--    an UPDATE fires.
-- 2. *A deleted tenant leaves no jobs, even when it races an enqueue* (the cascade). Deleting
--    tenants first takes `aoer_queue` in SHARE ROW EXCLUSIVE mode (a BEFORE DELETE statement
--    trigger), which waits for every transaction that writes jobs and holds new ones off
--    until the deletion commits; its AFTER DELETE statement trigger then deletes the deleted
--    tenants' jobs. An enqueue that committed first is seen and deleted; one that starts
--    after waits for the deletion, and its statement's snapshot, taken once it has the queue
--    (PostgreSQL locks a statement's tables before it takes the snapshot it runs with, in
--    READ COMMITTED), no longer sees the tenant. The product deletes no tenants; an operator
--    deleting one holds the queue's writers for as long as the deleting transaction lasts.
--    `TRUNCATE tenants CASCADE` empties the queue too.
--
-- What is given up: a REPEATABLE READ or SERIALIZABLE transaction that read a tenant before
-- it was deleted could still queue a job for it afterwards (the foreign key would have failed
-- it with a serialization error). Nothing in the product writes jobs at those levels, and a
-- job without a tenant recomputes nothing: `aoer_store_scores` reads tenants.

ALTER TABLE aoer_queue DROP CONSTRAINT aoer_queue_tenant_id_fkey;

-- The foreign key's error, word for word, for a job naming a tenant that does not exist.
CREATE FUNCTION aoer_queue_refuse_tenant(unknown uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'insert or update on table "aoer_queue" violates foreign key constraint "aoer_queue_tenant_id_fkey"'
        USING ERRCODE = 'foreign_key_violation',
              CONSTRAINT = 'aoer_queue_tenant_id_fkey',
              TABLE = 'aoer_queue',
              DETAIL = format('Key (tenant_id)=(%s) is not present in table "tenants".', unknown);
END
$$;

CREATE FUNCTION aoer_queue_check_tenants() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    unknown uuid;
BEGIN
    SELECT j.tenant_id INTO unknown
    FROM aoer_new_jobs j
    WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = j.tenant_id)
    LIMIT 1;
    IF FOUND THEN
        PERFORM aoer_queue_refuse_tenant(unknown);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER aoer_queue_tenants_exist
    AFTER INSERT ON aoer_queue
    REFERENCING NEW TABLE AS aoer_new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION aoer_queue_check_tenants();

CREATE FUNCTION aoer_queue_check_moved_tenant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = NEW.tenant_id) THEN
        PERFORM aoer_queue_refuse_tenant(NEW.tenant_id);
    END IF;
    RETURN NEW;
END
$$;

-- Only an UPDATE that sets tenant_id fires it (the queue's own updates never do).
CREATE TRIGGER aoer_queue_moved_tenant_exists
    BEFORE UPDATE OF tenant_id ON aoer_queue
    FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION aoer_queue_check_moved_tenant();

CREATE FUNCTION aoer_tenants_hold_queue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    LOCK TABLE aoer_queue IN SHARE ROW EXCLUSIVE MODE;
    RETURN NULL;
END
$$;

CREATE TRIGGER aoer_tenants_hold_queue
    BEFORE DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION aoer_tenants_hold_queue();

CREATE FUNCTION aoer_tenants_drop_jobs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM aoer_queue q USING aoer_deleted_tenants d WHERE q.tenant_id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER aoer_tenants_drop_jobs
    AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS aoer_deleted_tenants
    FOR EACH STATEMENT EXECUTE FUNCTION aoer_tenants_drop_jobs();

CREATE FUNCTION aoer_tenants_truncate_jobs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    -- A DELETE: TRUNCATE ... CASCADE has already opened aoer_failures, which a TRUNCATE of
    -- the queue would have to empty too.
    DELETE FROM aoer_queue;
    RETURN NULL;
END
$$;

CREATE TRIGGER aoer_tenants_truncate_jobs
    AFTER TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION aoer_tenants_truncate_jobs();

-- A tenant's id never changes while it has jobs (the foreign key's ON UPDATE NO ACTION).
CREATE FUNCTION aoer_tenants_keep_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM aoer_queue WHERE tenant_id = OLD.id) THEN
        RAISE EXCEPTION 'update on table "tenants" violates foreign key constraint "aoer_queue_tenant_id_fkey" on table "aoer_queue"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'aoer_queue_tenant_id_fkey',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "aoer_queue".',
                                  OLD.id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER aoer_tenants_keep_id
    BEFORE UPDATE OF id ON tenants
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION aoer_tenants_keep_id();
