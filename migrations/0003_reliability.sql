-- Reliability (every job ends exactly once) and models that are not Sora.
-- New states: 'posting' (written just before the clip or its fallback is posted, so a restart looks
-- in the channel before posting again), 'queued' and 'cancelled' (the server's queue and Cancel).
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt; references from the
-- ledger are checked before the migration commits.
-- migration: rebuilds tables

CREATE TABLE jobs_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id          INTEGER NOT NULL,
    channel_id        INTEGER NOT NULL,
    member_id         INTEGER NOT NULL,
    application_id    INTEGER NOT NULL,
    interaction_token TEXT,
    token_expires_at  REAL,
    upload_limit      INTEGER NOT NULL,
    remixed_from      INTEGER REFERENCES jobs(id),
    model             TEXT NOT NULL,
    size              TEXT NOT NULL,
    seconds           INTEGER NOT NULL,
    prompt            TEXT NOT NULL,
    image_path        TEXT,
    image_mime        TEXT,
    status            TEXT NOT NULL DEFAULT 'received'
                      CHECK (status IN ('received', 'reserved', 'queued', 'submitting', 'submitted',
                                        'completed', 'posting', 'posted', 'failed', 'cancelled')),
    provider_video_id TEXT,
    progress          INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    card_message_id   INTEGER,
    clip_message_id   INTEGER,
    cost_micros       INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    result_url        TEXT,
    expires_at        REAL,
    compressed        INTEGER NOT NULL DEFAULT 0,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    submitted_at      REAL,
    completed_at      REAL,
    finished_at       REAL,
    -- random, per job: Discord dedupes a retried post by it (never derived from the row id)
    nonce             TEXT NOT NULL DEFAULT (lower(hex(randomblob(10)))),
    -- last sign of life from the provider (submission, a change of progress): the age limit counts from it
    alive_at          REAL,
    -- opaque data the provider's client needs to find the job again (e.g. its status URL)
    provider_locator  TEXT,
    -- the member's choice of sound for models where it is optional (NULL: the model's default)
    audio             INTEGER CHECK (audio IN (0, 1)),
    -- what the provider says the finished job cost (charged instead of the estimate)
    actual_cost_micros INTEGER CHECK (actual_cost_micros >= 0),
    -- Extend: the clip this job continues (from its last frame); the two are posted joined
    extended_from     INTEGER REFERENCES jobs(id),
    -- when the job left the server's queue for the provider (fair turns between members)
    started_at        REAL
);
INSERT INTO jobs_new (id, guild_id, channel_id, member_id, application_id, interaction_token,
    token_expires_at, upload_limit, remixed_from, model, size, seconds, prompt, image_path, image_mime,
    status, provider_video_id, progress, error, card_message_id, clip_message_id, cost_micros,
    result_url, expires_at, compressed, created_at, updated_at, submitted_at, completed_at, finished_at,
    alive_at, started_at)
SELECT id, guild_id, channel_id, member_id, application_id, interaction_token,
    token_expires_at, upload_limit, remixed_from, model, size, seconds, prompt, image_path, image_mime,
    status, provider_video_id, progress, error, card_message_id, clip_message_id, cost_micros,
    result_url, expires_at, compressed, created_at, updated_at, submitted_at, completed_at, finished_at,
    COALESCE(submitted_at, created_at), created_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_unfinished ON jobs (status) WHERE status NOT IN ('posted', 'failed', 'cancelled');
CREATE INDEX jobs_member ON jobs (guild_id, member_id, created_at);
CREATE UNIQUE INDEX jobs_provider_video ON jobs (provider_video_id) WHERE provider_video_id IS NOT NULL;
CREATE INDEX jobs_queue ON jobs (guild_id, status, member_id, id);
CREATE INDEX jobs_token_expiry ON jobs (token_expires_at) WHERE interaction_token IS NOT NULL;
