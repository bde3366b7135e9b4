-- gradlab history store on PostgreSQL, schema 4: checkpoints and forks (see migrations/sqlite/0006 and
-- src/store/checkpoints.rs). Parameters do not compress: EXTERNAL keeps them out of line and
-- spares pglz a try on every write.
CREATE TABLE checkpoints (
    job_id     BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step       BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    data       BYTEA  NOT NULL,
    PRIMARY KEY (job_id, step)
);
ALTER TABLE checkpoints ALTER COLUMN data SET STORAGE EXTERNAL;

ALTER TABLE jobs ADD COLUMN resumed_from BIGINT;

-- Forks: a job started from another's checkpoint at fork_step; its history before that step is
-- read from its parent (runner::lineage), which cannot be deleted while it has forks.
ALTER TABLE jobs ADD COLUMN parent_id BIGINT;
ALTER TABLE jobs ADD COLUMN fork_step BIGINT;
CREATE INDEX jobs_by_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;
