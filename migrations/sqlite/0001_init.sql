-- gradlab history store, schema 1. See src/store/mod.rs for the layout and why.

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,            -- creation order: ids are never reused (jobs are never deleted)
    sweep_id    INTEGER,
    spec        TEXT    NOT NULL,               -- JobSpec as JSON
    name        TEXT    NOT NULL,
    activation  TEXT    NOT NULL,               -- canonical name, for filtering
    depth       INTEGER NOT NULL,               -- hidden layers
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    steps_done  INTEGER NOT NULL DEFAULT 0,     -- last stored step + 1
    n_layers    INTEGER,                        -- layers per stored step, fixed by the first append
    created_ms  INTEGER NOT NULL,
    started_ms  INTEGER,
    finished_ms INTEGER,
    summary     TEXT,                           -- JobSummary as JSON
    verdict     TEXT,                           -- summary's verdict, for filtering
    error       TEXT
);

CREATE INDEX jobs_by_state      ON jobs (state, id);
CREATE INDEX jobs_by_activation ON jobs (activation, id);
CREATE INDEX jobs_by_depth      ON jobs (depth, id);
CREATE INDEX jobs_by_verdict    ON jobs (verdict, id);
CREATE INDEX jobs_by_sweep      ON jobs (sweep_id, id);

CREATE TABLE job_labels (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;

CREATE INDEX job_labels_by_key ON job_labels (key, value, job_id);

-- Series chunks: up to CHUNK_STEPS consecutive recorded steps of one series of one job.
-- layer >= 0: a layer's 12 LayerStats metrics; layer = -1: the step scalars
-- (loss, accuracy, lr, global_grad_norm). data: see store::codec::encode_chunk.
CREATE TABLE chunks (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    layer      INTEGER NOT NULL,
    first_step INTEGER NOT NULL,
    last_step  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    data       BLOB    NOT NULL
);

CREATE UNIQUE INDEX chunks_by_series ON chunks (job_id, layer, first_step);

-- One row per step that has histograms; data: all layers, see store::codec::encode_histograms.
CREATE TABLE histograms (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    data   BLOB    NOT NULL,
    PRIMARY KEY (job_id, step)
);

-- NaN is stored as NULL (SQLite has no NaN REAL) and read back as NaN.
CREATE TABLE evals (
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step          INTEGER NOT NULL,
    test_loss     REAL,
    test_accuracy REAL,
    PRIMARY KEY (job_id, step)
) WITHOUT ROWID;
