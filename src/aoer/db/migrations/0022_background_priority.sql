-- Background work at a lower CPU priority: the `prioritize` extension, where the server has it.
--
-- A refresh is background work; a summary read is someone waiting. On a database host whose
-- cores a refresh keeps busy, PostgreSQL's backends all run at the same priority, so the
-- API's statements queue behind the workers' for CPU. With this extension (Debian and PGDG:
-- postgresql-NN-prioritize) each worker session lowers its own backend's priority when it
-- connects (AOER_WORKER_NICE, src/aoer/db/pool.py); the server's own process renices itself,
-- so it works wherever the database runs, and a role that is not a superuser can only lower
-- the priority of its own backends (the extension checks). Citus does the same for its
-- background backends (`citus.cpu_priority`).
--
-- Creating an extension that is not trusted takes a superuser: a migration run by one whose
-- server has the extension installed creates it; otherwise nothing changes here, workers run
-- at the normal priority, and an operator can later run `CREATE EXTENSION prioritize` as a
-- superuser (workers use it from their next connection).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'prioritize')
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EXTENSION IF NOT EXISTS prioritize;
    END IF;
END
$$;
