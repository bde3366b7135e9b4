-- gradlab history store, schema 4: jobs and sweeps can be deleted. SQLite gives a new row the
-- largest id in its table + 1, so deleting the newest job would hand its id to the next one
-- (and a link to /jobs/ID would show another job). The largest id of each table at any delete
-- is kept here, and new rows take ids above it: ids are never reused.
CREATE TABLE id_floor (
    tbl    TEXT    PRIMARY KEY,
    max_id INTEGER NOT NULL
) WITHOUT ROWID;
