-- Answer-engine observations (DESIGN §14): what each answer engine said about a dealership,
-- per tracked prompt and day, and where a signal value came from.

CREATE TABLE answer_observations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dealer_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    date        date NOT NULL,
    engine      text NOT NULL CHECK (engine ~ '^[a-z0-9_]+$' AND char_length(engine) <= 50),
    -- At most 500 characters: the unique index below must hold the prompt (≤ 2,704 bytes).
    prompt      text NOT NULL
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

SELECT aoer_protect_tenant_table('answer_observations', 'dealer_id');
-- A tenant may send its own observations (like its signals).
GRANT SELECT, INSERT, UPDATE ON answer_observations TO aoer_tenant;

-- Provenance of a day's aeo/geo: true when the value was derived from that day's observations
-- (`deriveSignals`), false when it was supplied directly (POST /api/signals, `aoer signals
-- import`) or is absent. A derivation may replace a derived value or fill a missing one, never
-- a supplied one.
ALTER TABLE aiv_raw_signals
    ADD COLUMN aeo_derived boolean NOT NULL DEFAULT false,
    ADD COLUMN geo_derived boolean NOT NULL DEFAULT false;
