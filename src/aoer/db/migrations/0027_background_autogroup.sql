-- Background work at a lower CPU priority, also where the kernel schedules by session.
--
-- 0022 lowers each worker session's backend to AOER_WORKER_NICE through the `prioritize`
-- extension (setpriority). On Linux with autogroups on (kernel.sched_autogroup_enabled = 1,
-- the default of Debian's and Ubuntu's kernels) that niceness only ranks a process among the
-- processes of its own session, and the CPU is first shared between sessions -- and every
-- PostgreSQL backend leads a session of its own (the postmaster's children call setsid()).
-- So on such a host a worker's backend at niceness 10 still took the CPU exactly as an API
-- request's did: measured at 100,000 tenants on two cores, the refresh took a third of the
-- API process's core and its cached-read p99 rose 2.4-2.9x; with the workers' sessions'
-- autogroups at niceness 10 as well, 1.05-1.3x (bench/README.md, "Niceness that holds").
--
-- A session's autogroup niceness is set by writing /proc/<pid>/autogroup, which the
-- backend's own process may do (it runs as the server's user). This function has the backend
-- write its own, through COPY to that file, which takes a superuser: it is created only when
-- a superuser runs the migration, like 0022, and runs as its owner (SECURITY DEFINER) with
-- nothing of the caller's but a niceness it checks. It lowers the calling backend only, never
-- raises it, and answers the autogroup's niceness, or NULL where the kernel has no
-- autogroups (or /proc is not writable): the backend then keeps what setpriority gave it.
--
-- The kernel takes one such change every 100 ms from an unprivileged process, across the
-- whole host (EAGAIN otherwise): a pool opening its connections together is served in turn,
-- each call waiting up to `max_wait_ms` for its turn.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    CREATE FUNCTION aoer_lower_session_autogroup(nice integer, max_wait_ms integer DEFAULT 3000)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    DECLARE
        line text;
        current_nice integer;
        started timestamptz := clock_timestamp();
    BEGIN
        IF nice IS NULL OR nice < 0 OR nice > 19 THEN
            RAISE EXCEPTION 'aoer_lower_session_autogroup: niceness must be 0-19, got %', nice
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
            line := pg_read_file('/proc/self/autogroup');
        EXCEPTION WHEN undefined_file OR insufficient_privilege THEN
            RETURN NULL;  -- a kernel without autogroups
        END;
        current_nice := substring(line FROM 'nice (-?[0-9]+)')::integer;
        IF current_nice IS NULL THEN
            RETURN NULL;
        END IF;
        IF current_nice >= nice THEN
            RETURN current_nice;
        END IF;
        LOOP
            BEGIN
                EXECUTE format('COPY (SELECT %s) TO %L', nice, '/proc/self/autogroup');
                RETURN nice;
            EXCEPTION
                WHEN insufficient_privilege OR undefined_file THEN
                    RETURN NULL;  -- /proc read-only (a container), or no autogroups
                WHEN internal_error THEN
                    -- EAGAIN: another process changed an autogroup in the last 100 ms.
                    IF clock_timestamp() - started
                       >= make_interval(secs => max_wait_ms / 1000.0) THEN
                        RAISE;
                    END IF;
            END;
            PERFORM pg_sleep(0.02 + random() * 0.08);
        END LOOP;
    END
    $fn$;
END
$$;
