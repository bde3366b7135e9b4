-- gradlab history store on PostgreSQL, schema 4: checkpoints (see migrations/sqlite/0006 and
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
