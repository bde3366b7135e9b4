-- gradlab history store on PostgreSQL, schema 3: jobs are filtered and sorted by what they
-- achieved (as migrations/sqlite/0005_results.sql): the held-out accuracy and loss of a
-- finished job (NULL without one; a diverged loss is +inf) and the widest hidden layer.
ALTER TABLE jobs ADD COLUMN width BIGINT;
ALTER TABLE jobs ADD COLUMN test_accuracy DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN test_loss DOUBLE PRECISION;

UPDATE jobs SET width = (SELECT max(h::bigint) FROM jsonb_array_elements_text(spec::jsonb -> 'hidden') AS h);

-- The summary writes NaN and infinities as the strings "NaN", "inf" and "-inf".
UPDATE jobs SET
    test_accuracy = CASE WHEN jsonb_typeof(summary::jsonb -> 'test_accuracy') = 'number'
        THEN (summary::jsonb ->> 'test_accuracy')::double precision END,
    test_loss = CASE
        WHEN jsonb_typeof(summary::jsonb -> 'test_loss') = 'number' THEN (summary::jsonb ->> 'test_loss')::double precision
        WHEN summary::jsonb ->> 'test_loss' = 'inf' THEN 'Infinity'::double precision
        WHEN summary::jsonb ->> 'test_loss' = '-inf' THEN '-Infinity'::double precision END
WHERE summary IS NOT NULL;

CREATE INDEX jobs_by_width         ON jobs (width, id);
CREATE INDEX jobs_by_test_accuracy ON jobs (test_accuracy, id);
CREATE INDEX jobs_by_test_loss     ON jobs (test_loss, id);
CREATE INDEX jobs_by_finished      ON jobs (finished_ms, id);
