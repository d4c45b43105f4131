-- Time-ordered ids to the microsecond, not only the millisecond.
--
-- 0018's ids carry a 48-bit Unix time in milliseconds and random bits after it, so the ids of
-- one millisecond are in random order. On a fast host one statement makes hundreds of rows a
-- millisecond (the tick's chunks, the events of a batch): 8,000 jobs in 25 milliseconds here,
-- ~320 a millisecond, more than a leaf page of an index on (created_at, id), whose created_at
-- is one value for the whole statement. Those inserts land at random inside the newest
-- millisecond's pages, which a B-tree splits half and half: the console's index of waiting
-- jobs (0026) came out 57-74 % dense after one 4,000-job statement, where appending it fills
-- its pages to ~90 % (tests/integration/test_console_plans.py, which failed for it on this
-- host; bench/README.md, "The console's indexes, filled from the right").
--
-- The 12 bits after the version now hold the fraction of the millisecond (RFC 9562 section
-- 6.2, method 3, as PostgreSQL 18's uuidv7() does), from the clock's microseconds: ids drawn one
-- after another in a statement are in order except within one microsecond. The rest is as in
-- 0018: version 7, the RFC variant, 62 random bits. PL/pgSQL because the time is read once and
-- used twice, which an inlined SQL function cannot do: 1.9 us a call against 1.5, measured
-- through a whole 100,000-tenant refresh as no slower (bench/README.md).
CREATE OR REPLACE FUNCTION aoer_uuid_v7() RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    micros CONSTANT bigint := (date_part('epoch', clock_timestamp()) * 1000000)::bigint;
BEGIN
    -- 48 bits of milliseconds | version 0111 | 12 bits of the millisecond's fraction.
    RETURN encode(
        overlay(uuid_send(gen_random_uuid())
                PLACING int8send(((micros / 1000) << 16) | 28672
                                 | ((micros % 1000) * 4096 / 1000))
                FROM 1 FOR 8),
        'hex')::uuid;
END
$$;
