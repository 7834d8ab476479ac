-- Quotas: a way to store "no monthly limit" as a server's own choice, and the ledger's rules in the
-- database itself, so no code path (or hand-written SQL) can break them.

-- guild_monthly_micros NULL means "the operator's default"; this flag means "no monthly limit here",
-- even when the operator's default has one. When it is 1, guild_monthly_micros is NULL.
ALTER TABLE guild_settings ADD COLUMN guild_monthly_unlimited INTEGER NOT NULL DEFAULT 0
    CHECK (guild_monthly_unlimited IN (0, 1));

-- The ledger is append-only: rows are never changed or deleted.
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are never changed');
END;

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are never deleted');
END;

-- A charge or refund settles the job's reservation: it needs one, and only one settlement is allowed
-- (a job is charged or refunded, never both).
CREATE TRIGGER ledger_settles_once BEFORE INSERT ON ledger
WHEN NEW.kind IN ('charge', 'refund')
BEGIN
    SELECT RAISE(ABORT, 'a charge or refund needs the job''s reservation')
    WHERE NOT EXISTS (SELECT 1 FROM ledger WHERE job_id = NEW.job_id AND kind = 'reserve');
    SELECT RAISE(ABORT, 'a job is charged or refunded, never both')
    WHERE EXISTS (SELECT 1 FROM ledger WHERE job_id = NEW.job_id AND kind IN ('charge', 'refund'));
END;
