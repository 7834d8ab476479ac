-- soracord schema for PostgreSQL: the twin of ../0001_init.sql (same tables, columns and constraints).
-- Money is integer micro-dollars; times are UTC epoch seconds. SQLite's INTEGER is BIGINT here (Discord
-- ids need 64 bits), REAL is DOUBLE PRECISION, and AUTOINCREMENT is an identity column.

-- Small key/value store for the bot itself (e.g. the hash of the last synced command tree).
CREATE TABLE bot_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Per-server overrides of the budget defaults; NULL means "use the operator's default".
CREATE TABLE guild_settings (
    guild_id             BIGINT PRIMARY KEY,
    guild_daily_micros   BIGINT CHECK (guild_daily_micros >= 0),
    guild_monthly_micros BIGINT CHECK (guild_monthly_micros >= 0),
    member_daily_micros  BIGINT CHECK (member_daily_micros >= 0),
    max_concurrent_jobs  BIGINT CHECK (max_concurrent_jobs >= 0),
    updated_by           BIGINT,
    updated_at           BIGINT NOT NULL
);

-- One row per request, from the moment it is acknowledged.
-- status: received -> reserved -> submitting -> submitted -> completed -> posted, or failed.
CREATE TABLE jobs (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id          BIGINT NOT NULL,
    channel_id        BIGINT NOT NULL,
    member_id         BIGINT NOT NULL,
    application_id    BIGINT NOT NULL,
    interaction_token TEXT,
    token_expires_at  DOUBLE PRECISION,
    upload_limit      BIGINT NOT NULL,
    remixed_from      BIGINT REFERENCES jobs(id),
    model             TEXT NOT NULL,
    size              TEXT NOT NULL,
    seconds           BIGINT NOT NULL,
    prompt            TEXT NOT NULL,
    image_path        TEXT,
    image_mime        TEXT,
    status            TEXT NOT NULL DEFAULT 'received'
                      CHECK (status IN ('received', 'reserved', 'submitting', 'submitted',
                                        'completed', 'posted', 'failed')),
    provider_video_id TEXT,
    progress          BIGINT NOT NULL DEFAULT 0,
    error             TEXT,
    card_message_id   BIGINT,
    clip_message_id   BIGINT,
    cost_micros       BIGINT NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    result_url        TEXT,
    expires_at        DOUBLE PRECISION,
    compressed        BIGINT NOT NULL DEFAULT 0,
    created_at        DOUBLE PRECISION NOT NULL,
    updated_at        DOUBLE PRECISION NOT NULL,
    submitted_at      DOUBLE PRECISION,
    completed_at      DOUBLE PRECISION,
    finished_at       DOUBLE PRECISION
);
CREATE INDEX jobs_unfinished ON jobs (status) WHERE status NOT IN ('posted', 'failed');
CREATE INDEX jobs_member ON jobs (guild_id, member_id, created_at);
CREATE UNIQUE INDEX jobs_provider_video ON jobs (provider_video_id) WHERE provider_video_id IS NOT NULL;

-- Budget ledger: a job reserves its estimate once, then that reservation is charged or refunded once.
-- Spent in a window = reservations made in it that were not refunded (charged or still open).
-- window_at is the reservation's time, so a job counts in the day and month it was accepted in.
CREATE TABLE ledger (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        BIGINT NOT NULL REFERENCES jobs(id),
    guild_id      BIGINT NOT NULL,
    member_id     BIGINT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('reserve', 'charge', 'refund')),
    amount_micros BIGINT NOT NULL CHECK (amount_micros >= 0),
    window_at     BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (job_id, kind)
);
CREATE INDEX ledger_guild_window ON ledger (guild_id, window_at);
CREATE INDEX ledger_member_window ON ledger (guild_id, member_id, window_at);
