-- gradlab history store, schema 5: jobs are filtered and sorted by what they achieved. The
-- held-out accuracy and loss of a finished job (NULL without one; a diverged loss is +inf) and
-- the widest hidden layer become columns, filled here for the jobs already stored.
ALTER TABLE jobs ADD COLUMN width INTEGER;
ALTER TABLE jobs ADD COLUMN test_accuracy REAL;
ALTER TABLE jobs ADD COLUMN test_loss REAL;

UPDATE jobs SET width = (SELECT max(value) FROM json_each(jobs.spec, '$.hidden'));

-- The summary writes NaN and infinities as the strings "NaN", "inf" and "-inf".
UPDATE jobs SET
    test_accuracy = CASE json_type(summary, '$.test_accuracy')
        WHEN 'real' THEN json_extract(summary, '$.test_accuracy')
        WHEN 'integer' THEN json_extract(summary, '$.test_accuracy') END,
    test_loss = CASE
        WHEN json_type(summary, '$.test_loss') IN ('real', 'integer') THEN json_extract(summary, '$.test_loss')
        WHEN json_extract(summary, '$.test_loss') = 'inf' THEN 9e999
        WHEN json_extract(summary, '$.test_loss') = '-inf' THEN -9e999 END
WHERE summary IS NOT NULL;

CREATE INDEX jobs_by_width         ON jobs (width, id);
CREATE INDEX jobs_by_test_accuracy ON jobs (test_accuracy, id);
CREATE INDEX jobs_by_test_loss     ON jobs (test_loss, id);
CREATE INDEX jobs_by_finished      ON jobs (finished_ms, id);
