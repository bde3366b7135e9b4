-- gradlab history store, schema 6: checkpoints. A job's whole training state after `step` steps
-- (engine::checkpoint's format), written with its history up to that step already stored; a job
-- claimed again goes on from its newest one (resumed_from) instead of step 0. See
-- src/store/checkpoints.rs.
CREATE TABLE checkpoints (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (job_id, step)
);

ALTER TABLE jobs ADD COLUMN resumed_from INTEGER;
