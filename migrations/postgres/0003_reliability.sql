-- The twin of ../0003_reliability.sql. Reliability (every job ends exactly once) and models that are
-- not Sora.
-- New states: 'posting' (written just before the clip or its fallback is posted, so a restart looks
-- in the channel before posting again), 'queued' and 'cancelled' (the server's queue and Cancel).
-- PostgreSQL changes the CHECK constraint and adds the columns in place (SQLite rebuilds the table).

ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('received', 'reserved', 'queued', 'submitting', 'submitted',
                      'completed', 'posting', 'posted', 'failed', 'cancelled'));

-- random, per job: Discord dedupes a retried post by it (never derived from the row id). Twenty hex
-- digits, as SQLite's lower(hex(randomblob(10))); existing jobs each get their own.
ALTER TABLE jobs ADD COLUMN nonce TEXT NOT NULL
    DEFAULT encode(substring(sha256(gen_random_uuid()::text::bytea) FROM 1 FOR 10), 'hex');
-- last sign of life from the provider (submission, a change of progress): the age limit counts from it
ALTER TABLE jobs ADD COLUMN alive_at DOUBLE PRECISION;
UPDATE jobs SET alive_at = COALESCE(submitted_at, created_at);
-- opaque data the provider's client needs to find the job again (e.g. its status URL)
ALTER TABLE jobs ADD COLUMN provider_locator TEXT;
-- the member's choice of sound for models where it is optional (NULL: the model's default)
ALTER TABLE jobs ADD COLUMN audio BIGINT CHECK (audio IN (0, 1));
ALTER TABLE jobs ADD COLUMN actual_cost_micros BIGINT CHECK (actual_cost_micros >= 0);
ALTER TABLE jobs ADD COLUMN extended_from BIGINT REFERENCES jobs(id);
ALTER TABLE jobs ADD COLUMN started_at DOUBLE PRECISION;
UPDATE jobs SET started_at = created_at;

DROP INDEX jobs_unfinished;
CREATE INDEX jobs_unfinished ON jobs (status) WHERE status NOT IN ('posted', 'failed', 'cancelled');
CREATE INDEX jobs_queue ON jobs (guild_id, status, member_id, id);
CREATE INDEX jobs_token_expiry ON jobs (token_expires_at) WHERE interaction_token IS NOT NULL;
