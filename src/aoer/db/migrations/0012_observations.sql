-- Answer-engine observations (DESIGN §14): what each answer engine said about a dealership,
-- per tracked prompt and day, and where a signal value came from.

CREATE TABLE answer_observations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dealer_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    date        date NOT NULL,
    -- Byte-order ("C") text keys: the unique index compares them with memcmp, not the
    -- database's locale, and orderings never depend on it.
    engine      text COLLATE "C" NOT NULL
                CHECK (engine ~ '^[a-z0-9_]+$' AND char_length(engine) <= 50),
    -- At most 500 characters: the unique index below must hold the prompt (≤ 2,704 bytes).
    prompt      text COLLATE "C" NOT NULL
                CHECK (length(btrim(prompt)) > 0 AND char_length(prompt) <= 500),
    mentioned   boolean NOT NULL,
    position    integer CHECK (position >= 1),  -- 1-based rank among the businesses named
    cited       boolean NOT NULL,
    cited_urls  text[] NOT NULL DEFAULT '{}',
    competitors text[] NOT NULL DEFAULT '{}',  -- other businesses the answer named
    sentiment   numeric(3,2) CHECK (sentiment BETWEEN -1 AND 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Re-sending a (dealer, day, engine, prompt) replaces it. The index also serves the
    -- window read (`dealer_id = $1 AND date BETWEEN …`), so no other is needed.
    CONSTRAINT answer_observations_key UNIQUE (dealer_id, date, engine, prompt)
);

-- Daily rollups, rewritten for the days an ingest touches (store/observations.py), so the
-- window read sums at most 31 rows per engine instead of re-reading ~18,000 answers. Exact
-- integer and numeric sums: the metrics divide them as they would divide the raw counts.
CREATE TABLE answer_observation_days (
    dealer_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    date            date NOT NULL,
    engine          text COLLATE "C" NOT NULL,
    answers         integer NOT NULL,
    mentions        integer NOT NULL,  -- answers naming the dealership
    cited           integer NOT NULL,
    rival_mentions  integer NOT NULL,  -- distinct competitors per answer, summed
    positions       integer NOT NULL,  -- mentioned answers with a position
    position_sum    bigint NOT NULL,
    sentiments      integer NOT NULL,  -- answers with a sentiment
    sentiment_sum   numeric NOT NULL,
    PRIMARY KEY (dealer_id, date, engine)
);
-- Answers naming each competitor, and citing each page, per dealer and day (all engines).
CREATE TABLE answer_competitor_days (
    dealer_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    date       date NOT NULL,
    name       text COLLATE "C" NOT NULL,
    mentions   integer NOT NULL,
    PRIMARY KEY (dealer_id, date, name)
);
CREATE TABLE answer_cited_url_days (
    dealer_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    date       date NOT NULL,
    url        text COLLATE "C" NOT NULL,
    answers    integer NOT NULL,
    PRIMARY KEY (dealer_id, date, url)
);

SELECT aoer_protect_tenant_table('answer_observations', 'dealer_id');
SELECT aoer_protect_tenant_table('answer_observation_days', 'dealer_id');
SELECT aoer_protect_tenant_table('answer_competitor_days', 'dealer_id');
SELECT aoer_protect_tenant_table('answer_cited_url_days', 'dealer_id');
-- A tenant may send its own observations (like its signals), which rewrites its rollups.
GRANT SELECT, INSERT, UPDATE ON answer_observations TO aoer_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON answer_observation_days, answer_competitor_days, answer_cited_url_days TO aoer_tenant;

-- Provenance of a day's aeo/geo: true when the value was derived from that day's observations
-- (`deriveSignals`), false when it was supplied directly (POST /api/signals, `aoer signals
-- import`) or is absent. A derivation may replace a derived value or fill a missing one, never
-- a supplied one.
ALTER TABLE aiv_raw_signals
    ADD COLUMN aeo_derived boolean NOT NULL DEFAULT false,
    ADD COLUMN geo_derived boolean NOT NULL DEFAULT false;
