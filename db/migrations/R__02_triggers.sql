-- Triggers that no code path can skip: the balance audit trail, the execution-log hash chain, and
-- append-only enforcement for the history tables. They fire in every role's session, whatever its
-- search_path, so they name trading's objects explicitly (and carry no SET clause, which would cost a
-- search_path switch on every row).
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Every change of an account's balance or used_margin writes one balance_audit_log row, whoever makes it.
-- Equity = balance + unrealized PnL of the open positions at last prices. Writers update positions before
-- the account, so the positions seen here are the new ones; the change of accounts.realized_pnl is the
-- unrealized PnL that a close turned into cash, which gives the equity before exactly.
-- The order is app.order_id; a statement that moves money for many accounts at once (the risk engine's batch
-- closes, R__12) sets only app.transaction_id, and each account's order is then its one order of that
-- transaction (orders are UNIQUE (user_id, transaction_id)).
CREATE OR REPLACE FUNCTION accounts_audit() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    v_unrealized     numeric := trading.account_unrealized_pnl(NEW.user_id);
    v_balance_before numeric := 0;
    v_margin_before  numeric := 0;
    v_realized_delta numeric := NEW.realized_pnl;
    v_transaction    uuid := nullif(current_setting('app.transaction_id', true), '')::uuid;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        v_balance_before := OLD.balance;
        v_margin_before := OLD.used_margin;
        v_realized_delta := NEW.realized_pnl - OLD.realized_pnl;
    END IF;

    INSERT INTO trading.balance_audit_log (user_id, order_id, transaction_id, reason,
                                   balance_before, balance_after, margin_before, margin_after,
                                   equity_before, equity_after)
    VALUES (NEW.user_id,
            coalesce(nullif(current_setting('app.order_id', true), '')::uuid,
                     (SELECT o.id FROM trading.orders o WHERE o.user_id = NEW.user_id AND o.transaction_id = v_transaction)),
            v_transaction,
            coalesce(nullif(current_setting('app.audit_reason', true), ''), 'direct_' || lower(TG_OP) || ' by ' || current_user),
            v_balance_before, NEW.balance, v_margin_before, NEW.used_margin,
            v_balance_before + v_unrealized + v_realized_delta, NEW.balance + v_unrealized);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER accounts_audit_insert
    AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_audit();

CREATE OR REPLACE TRIGGER accounts_audit_update
    AFTER UPDATE ON accounts
    FOR EACH ROW
    WHEN (OLD.balance IS DISTINCT FROM NEW.balance OR OLD.used_margin IS DISTINCT FROM NEW.used_margin)
    EXECUTE FUNCTION accounts_audit();

-- The hash chain of execution_logs, per account: seq, prev_hash and row_hash are always computed here,
-- whatever the inserter supplied. The account row lock serialises appends for one account.
CREATE OR REPLACE FUNCTION execution_logs_chain() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    v_prev record;
BEGIN
    PERFORM 1 FROM trading.accounts WHERE user_id = NEW.user_id FOR UPDATE;
    SELECT seq, row_hash INTO v_prev
    FROM trading.execution_logs
    WHERE user_id = NEW.user_id
    ORDER BY seq DESC
    LIMIT 1;

    NEW.seq := coalesce(v_prev.seq, 0) + 1;
    NEW.prev_hash := coalesce(v_prev.row_hash, trading.execution_log_genesis_hash());
    NEW.created_at := now();
    NEW.details := coalesce(NEW.details, '{}'::jsonb);
    NEW.row_hash := trading.execution_log_hash(NEW.prev_hash, NEW.user_id, NEW.seq, NEW.order_id, NEW.event, NEW.reason,
                                       NEW.error_code, NEW.transaction_id, NEW.details, NEW.created_at);
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER execution_logs_chain
    BEFORE INSERT ON execution_logs
    FOR EACH ROW EXECUTE FUNCTION execution_logs_chain();

-- Instruments are never deleted and their symbols never change, for every role (the owner included): positions,
-- orders and fills name their instrument by symbol without a foreign key (V1_5_1), and this keeps every such
-- name pointing at its instrument. Everything else about an instrument (prices, rates, tradable) may change.
CREATE OR REPLACE FUNCTION instruments_keep_symbols() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% of instrument % is not allowed: instruments are never deleted and symbols never change', TG_OP,
        CASE WHEN TG_LEVEL = 'ROW' THEN OLD.symbol ELSE 'rows' END
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE OR REPLACE TRIGGER instruments_no_delete
    BEFORE DELETE ON instruments
    FOR EACH ROW EXECUTE FUNCTION instruments_keep_symbols();
CREATE OR REPLACE TRIGGER instruments_no_symbol_change
    BEFORE UPDATE OF symbol ON instruments
    FOR EACH ROW
    WHEN (OLD.symbol IS DISTINCT FROM NEW.symbol)
    EXECUTE FUNCTION instruments_keep_symbols();
CREATE OR REPLACE TRIGGER instruments_no_truncate
    BEFORE TRUNCATE ON instruments
    FOR EACH STATEMENT EXECUTE FUNCTION instruments_keep_symbols();

-- Append-only: UPDATE, DELETE and TRUNCATE raise for every role (the owner included).
CREATE OR REPLACE FUNCTION reject_history_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: the table is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE TRIGGER execution_logs_no_update
    BEFORE UPDATE ON execution_logs
    FOR EACH ROW EXECUTE FUNCTION reject_history_change();
CREATE OR REPLACE TRIGGER execution_logs_no_delete
    BEFORE DELETE ON execution_logs
    FOR EACH ROW EXECUTE FUNCTION reject_history_change();
CREATE OR REPLACE TRIGGER execution_logs_no_truncate
    BEFORE TRUNCATE ON execution_logs
    FOR EACH STATEMENT EXECUTE FUNCTION reject_history_change();

CREATE OR REPLACE TRIGGER balance_audit_log_no_update
    BEFORE UPDATE ON balance_audit_log
    FOR EACH ROW EXECUTE FUNCTION reject_history_change();
CREATE OR REPLACE TRIGGER balance_audit_log_no_truncate
    BEFORE TRUNCATE ON balance_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION reject_history_change();
CREATE OR REPLACE TRIGGER error_log_no_truncate
    BEFORE TRUNCATE ON error_log
    FOR EACH STATEMENT EXECUTE FUNCTION reject_history_change();

-- write_offs, the ledger of negative-balance write-offs (V1_4), is kept forever like execution_logs.
CREATE OR REPLACE TRIGGER write_offs_no_update
    BEFORE UPDATE ON write_offs
    FOR EACH ROW EXECUTE FUNCTION reject_history_change();
CREATE OR REPLACE TRIGGER write_offs_no_delete
    BEFORE DELETE ON write_offs
    FOR EACH ROW EXECUTE FUNCTION reject_history_change();
CREATE OR REPLACE TRIGGER write_offs_no_truncate
    BEFORE TRUNCATE ON write_offs
    FOR EACH STATEMENT EXECUTE FUNCTION reject_history_change();

-- balance_audit_log and error_log rows may be deleted only by the retention path: in the transaction that
-- recorded an archive covering them (audit_archives.created_txid), which only delete_archived_audit_rows() writes.
CREATE OR REPLACE FUNCTION allow_archived_delete_only() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1
        FROM trading.audit_archives a
        WHERE a.created_txid = txid_current()
          AND a.table_name = TG_TABLE_NAME
          AND OLD.id BETWEEN a.first_id AND a.last_id
          AND OLD.created_at < a.cutoff)
    THEN
        RAISE EXCEPTION 'DELETE on %.% is allowed only for rows archived in the same transaction', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;

CREATE OR REPLACE TRIGGER balance_audit_log_archived_delete_only
    BEFORE DELETE ON balance_audit_log
    FOR EACH ROW EXECUTE FUNCTION allow_archived_delete_only();
CREATE OR REPLACE TRIGGER error_log_archived_delete_only
    BEFORE DELETE ON error_log
    FOR EACH ROW EXECUTE FUNCTION allow_archived_delete_only();

-- error_log rows are facts; only their resolution may be recorded later.
CREATE OR REPLACE FUNCTION error_log_resolution_only() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF (to_jsonb(NEW) - 'resolved_at') IS DISTINCT FROM (to_jsonb(OLD) - 'resolved_at') THEN
        RAISE EXCEPTION 'UPDATE on %.% may only set resolved_at', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER error_log_resolution_only
    BEFORE UPDATE ON error_log
    FOR EACH ROW EXECUTE FUNCTION error_log_resolution_only();

RESET ROLE;
