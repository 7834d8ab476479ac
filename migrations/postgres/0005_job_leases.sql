-- The twin of ../0005_job_leases.sql.
-- Job leases (bot/jobs/leases.py): a process drives a job only while it holds the job's lease, so that
-- several processes on one database never drive the same job, and a dead process's jobs are adopted by
-- another once its leases expire.
-- lease_owner: the process holding the lease (NULL: nobody); lease_expires_at: UTC epoch seconds after
-- which another process may take it over unless the holder renewed it.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at DOUBLE PRECISION;
