-- The processes sharing the database (bot/jobs/leases.py): each one renews its row with its job leases
-- and takes its share of the bot's request budgets, divided by the rows not expired. With SQLite (one
-- process) the table stays empty.
-- owner: the process's lease owner name; expires_at: UTC epoch seconds after which it counts as gone.
CREATE TABLE bot_processes (
    owner      TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
