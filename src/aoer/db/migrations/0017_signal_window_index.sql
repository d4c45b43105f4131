-- The score reads its 30-day window from the primary key alone (issue 17).
--
-- Signals arrive a day at a time for every dealership, so one dealership's 30 rows of a
-- window lie on 30 different heap pages, each shared with ~65 other dealerships' rows of
-- that day. A batch of 1,000 recomputes read ~30,000 heap pages for ~3 MB of values; at
-- 100,000 dealerships that was ~110 ms of a ~270 ms batch, more than the rest of the score.
-- The primary key already orders the rows by (dealer_id, date), so one dealership's window
-- is a few adjacent entries of one or two leaf pages: carrying the five component columns
-- in it (INCLUDE, not key columns: uniqueness, ON CONFLICT (dealer_id, date) and the
-- partitions' pruning are unchanged) makes the window an index-only scan — heap pages are
-- visited only for rows changed since the last vacuum, as today's ingest. Measured on the
-- 100,000 x 60-day bench data: the terms of 1,000 tenants 107–118 ms -> 34–38 ms; the key
-- grows from ~52 to ~75 bytes a row (295 -> 414 MB there).
--
-- Rebuilds the key of every partition under an ACCESS EXCLUSIVE lock (seconds per million
-- rows; ingest and recomputes wait, reads of other tables do not).
ALTER TABLE aiv_raw_signals
    DROP CONSTRAINT aiv_raw_signals_pkey,
    ADD CONSTRAINT aiv_raw_signals_pkey PRIMARY KEY (dealer_id, date)
        INCLUDE (seo, aeo, geo, ugc, geolocal);
