-- Job leases (bot/jobs/leases.py): a process drives a job only while it holds the job's lease, so that
-- several processes on one database (PostgreSQL) never drive the same job, and a dead process's jobs
-- are adopted by another once its leases expire. With SQLite (one process) the lease is always its own.
-- lease_owner: the process holding the lease (NULL: nobody); lease_expires_at: UTC epoch seconds after
-- which another process may take it over unless the holder renewed it.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at REAL;
