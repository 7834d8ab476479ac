-- soracord schema. Money is integer micro-dollars; times are UTC epoch seconds.

-- Small key/value store for the bot itself (e.g. the hash of the last synced command tree).
CREATE TABLE bot_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Per-server overrides of the budget defaults; NULL means "use the operator's default".
CREATE TABLE guild_settings (
    guild_id             INTEGER PRIMARY KEY,
    guild_daily_micros   INTEGER CHECK (guild_daily_micros >= 0),
    guild_monthly_micros INTEGER CHECK (guild_monthly_micros >= 0),
    member_daily_micros  INTEGER CHECK (member_daily_micros >= 0),
    max_concurrent_jobs  INTEGER CHECK (max_concurrent_jobs >= 0),
    updated_by           INTEGER,
    updated_at           INTEGER NOT NULL
);

-- One row per request, from the moment it is acknowledged.
-- status: received -> reserved -> submitting -> submitted -> completed -> posted, or failed.
CREATE TABLE jobs (
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
                      CHECK (status IN ('received', 'reserved', 'submitting', 'submitted',
                                        'completed', 'posted', 'failed')),
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
    finished_at       REAL
);
CREATE INDEX jobs_unfinished ON jobs (status) WHERE status NOT IN ('posted', 'failed');
CREATE INDEX jobs_member ON jobs (guild_id, member_id, created_at);
CREATE UNIQUE INDEX jobs_provider_video ON jobs (provider_video_id) WHERE provider_video_id IS NOT NULL;

-- Budget ledger: a job reserves its estimate once, then that reservation is charged or refunded once.
-- Spent in a window = reservations made in it that were not refunded (charged or still open).
-- window_at is the reservation's time, so a job counts in the day and month it was accepted in.
CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        INTEGER NOT NULL REFERENCES jobs(id),
    guild_id      INTEGER NOT NULL,
    member_id     INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('reserve', 'charge', 'refund')),
    amount_micros INTEGER NOT NULL CHECK (amount_micros >= 0),
    window_at     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (job_id, kind)
);
CREATE INDEX ledger_guild_window ON ledger (guild_id, window_at);
CREATE INDEX ledger_member_window ON ledger (guild_id, member_id, window_at);
