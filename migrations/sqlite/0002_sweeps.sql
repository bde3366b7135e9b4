-- gradlab history store, schema 2: sweeps. A sweep's jobs point at it by jobs.sweep_id
-- (indexed by jobs_by_sweep); its state and counts are derived from them, never stored twice.

CREATE TABLE sweeps (
    id           INTEGER PRIMARY KEY,           -- creation order, never reused
    name         TEXT    NOT NULL,
    spec         TEXT    NOT NULL,              -- SweepSpec as JSON
    jobs_total   INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    cancelled_ms INTEGER
);
