-- The twin of ../0002_quota_guards.sql: "no monthly limit" as a server's own choice, and the ledger's
-- rules in the database itself, so no code path (or hand-written SQL) can break them.

-- guild_monthly_micros NULL means "the operator's default"; this flag means "no monthly limit here",
-- even when the operator's default has one. When it is 1, guild_monthly_micros is NULL.
ALTER TABLE guild_settings ADD COLUMN guild_monthly_unlimited BIGINT NOT NULL DEFAULT 0
    CHECK (guild_monthly_unlimited IN (0, 1));

-- The ledger is append-only: rows are never changed or deleted (TRUNCATE included, which SQLite lacks).
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'ledger rows are never changed';
    END IF;
    RAISE EXCEPTION 'ledger rows are never deleted';
END;
$$;

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- A charge or refund settles the job's reservation: it needs one, and only one settlement is allowed
-- (a job is charged or refunded, never both). Locking the reservation row makes two transactions that
-- settle the same job take turns, so the second one sees the first's settlement and is refused.
CREATE FUNCTION ledger_settles_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ledger WHERE job_id = NEW.job_id AND kind = 'reserve' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'a charge or refund needs the job''s reservation';
    END IF;
    IF EXISTS (SELECT 1 FROM ledger WHERE job_id = NEW.job_id AND kind IN ('charge', 'refund')) THEN
        RAISE EXCEPTION 'a job is charged or refunded, never both';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_settles_once BEFORE INSERT ON ledger
    FOR EACH ROW WHEN (NEW.kind IN ('charge', 'refund')) EXECUTE FUNCTION ledger_settles_once();
