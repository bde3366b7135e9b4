-- gradlab history store, schema 3: claims and leases. A worker claims a job (state running,
-- owner, attempt + 1, a lease) and renews the lease while it trains; a job whose lease ended is
-- claimed again by any worker. Writes of a job's history carry the attempt that claimed it and
-- are refused once the job has been claimed again (fencing). See src/runner/mod.rs.

ALTER TABLE jobs ADD COLUMN owner            TEXT;                        -- the worker holding the claim
ALTER TABLE jobs ADD COLUMN attempt          INTEGER NOT NULL DEFAULT 0;  -- claims so far: the fencing token
ALTER TABLE jobs ADD COLUMN lease_until_ms   INTEGER;                     -- the claim holds until then
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;  -- CancelJob asked its worker to stop it
