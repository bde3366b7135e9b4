-- gradlab history store, schema 6: checkpoints and forks. A job's whole training state after `step` steps
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

-- Forks: a job started from another's checkpoint at fork_step; its history before that step is
-- read from its parent (runner::lineage), which cannot be deleted while it has forks.
ALTER TABLE jobs ADD COLUMN parent_id INTEGER;
ALTER TABLE jobs ADD COLUMN fork_step INTEGER;
CREATE INDEX jobs_by_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;
