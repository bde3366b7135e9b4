-- gradlab history store on PostgreSQL, schema 1: the SQLite schema (migrations/sqlite, all of
-- it) in PostgreSQL's types. See src/store/mod.rs for the layout and src/store/postgres for what
-- differs: leases in the database's clock (lease_until), claims with FOR UPDATE SKIP LOCKED,
-- and NOTIFY on channel 'gradlab' for every change other servers follow.

CREATE TABLE jobs (
    id               BIGSERIAL PRIMARY KEY,     -- creation order, never reused
    sweep_id         BIGINT,
    spec             TEXT    NOT NULL,          -- JobSpec as JSON
    name             TEXT    NOT NULL,
    activation       TEXT    NOT NULL,
    depth            BIGINT  NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    steps_done       BIGINT  NOT NULL DEFAULT 0,
    n_layers         BIGINT,
    created_ms       BIGINT  NOT NULL,
    started_ms       BIGINT,
    finished_ms      BIGINT,
    summary          TEXT,
    verdict          TEXT,
    error            TEXT,
    owner            TEXT,                      -- the worker holding the claim
    attempt          BIGINT  NOT NULL DEFAULT 0,-- claims so far: the fencing token of writes
    lease_until      TIMESTAMPTZ,               -- the claim holds until then (database clock)
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX jobs_by_state      ON jobs (state, id);
CREATE INDEX jobs_by_activation ON jobs (activation, id);
CREATE INDEX jobs_by_depth      ON jobs (depth, id);
CREATE INDEX jobs_by_verdict    ON jobs (verdict, id);
CREATE INDEX jobs_by_sweep      ON jobs (sweep_id, id);
-- What workers claim from: only unfinished jobs, in id order.
CREATE INDEX jobs_claimable     ON jobs (id) WHERE state IN ('queued', 'running');

CREATE TABLE job_labels (
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key    TEXT   NOT NULL,
    value  TEXT   NOT NULL,
    PRIMARY KEY (job_id, key)
);

CREATE INDEX job_labels_by_key ON job_labels (key, value, job_id);

CREATE TABLE chunks (
    id         BIGSERIAL PRIMARY KEY,
    job_id     BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    layer      BIGINT NOT NULL,
    first_step BIGINT NOT NULL,
    last_step  BIGINT NOT NULL,
    n          BIGINT NOT NULL,
    data       BYTEA  NOT NULL
);

CREATE UNIQUE INDEX chunks_by_series ON chunks (job_id, layer, first_step);

CREATE TABLE histograms (
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step   BIGINT NOT NULL,
    data   BYTEA  NOT NULL,
    PRIMARY KEY (job_id, step)
);

-- DOUBLE PRECISION keeps NaN (SQLite's REAL cannot).
CREATE TABLE evals (
    job_id        BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step          BIGINT NOT NULL,
    test_loss     DOUBLE PRECISION,
    test_accuracy DOUBLE PRECISION,
    PRIMARY KEY (job_id, step)
);

CREATE TABLE sweeps (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT   NOT NULL,
    spec         TEXT   NOT NULL,
    jobs_total   BIGINT NOT NULL,
    created_ms   BIGINT NOT NULL,
    cancelled_ms BIGINT
);
