-- Consistency checks shared by validate_atomic_execution_integrity (one transaction) and the orphan scan
-- (every account). The set-returning checks run with the caller's rights, so row-level security limits a
-- trader's context to the trader's rows and lets maintenance see every account.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Incremental verification (this part with latest_ledger_checkpoint and ledger_start below): the chain checks start
-- at each account's chain checkpoint (chain_checkpoints, advanced by the orphan scan once the rows up to it verified),
-- so their cost grows with the rows written since, not with history. The checkpoint's own row is checked too: it must
-- still exist with the hash that was verified.

-- The account of p_user_id, or every account when it is NULL, in a shape the planner serves from the primary key
-- for one account ("p_user_id IS NULL OR user_id = p_user_id" would visit every account even for one). Inlinable.
CREATE OR REPLACE FUNCTION accounts_of(p_user_id uuid)
    RETURNS TABLE (user_id uuid)
    LANGUAGE sql STABLE
AS $$
    SELECT a.user_id FROM trading.accounts a WHERE a.user_id = p_user_id
    UNION ALL
    SELECT a.user_id FROM trading.accounts a WHERE p_user_id IS NULL
$$;

-- Rows of execution_logs, after the account's checkpoint, whose chain is broken: a gap in seq, a prev_hash that is not
-- the previous row's row_hash, or a row_hash that does not match the row's content; and a checkpoint whose row is gone
-- or has another row_hash now.
CREATE OR REPLACE FUNCTION execution_log_chain_breaks(p_user_id uuid DEFAULT NULL)
    RETURNS TABLE (user_id uuid, seq bigint, problem text)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT l.user_id, l.seq,
           CASE
               WHEN l.seq <> coalesce(l.previous_seq, l.checkpoint_seq) + 1 THEN 'sequence gap before this row'
               WHEN l.prev_hash <> coalesce(l.previous_hash, l.checkpoint_hash) THEN 'prev_hash is not the previous row_hash'
               ELSE 'row_hash does not match the row'
           END
    FROM accounts_of(p_user_id) a
    -- One row always (an aggregate), so the seq bound is a parameter of the index scan below, not a filter of it.
    CROSS JOIN LATERAL (
        SELECT coalesce(max(c.execution_log_seq), 0) AS seq,
               coalesce((array_agg(c.execution_log_hash))[1], execution_log_genesis_hash()) AS hash
        FROM chain_checkpoints c WHERE c.user_id = a.user_id
    ) cp
    CROSS JOIN LATERAL (
        SELECT e.*,
               cp.seq AS checkpoint_seq,
               cp.hash AS checkpoint_hash,
               lag(e.seq) OVER w AS previous_seq,
               lag(e.row_hash) OVER w AS previous_hash
        FROM execution_logs e
        WHERE e.user_id = a.user_id AND e.seq > cp.seq
        WINDOW w AS (ORDER BY e.seq)
    ) l
    WHERE (l.seq <> coalesce(l.previous_seq, l.checkpoint_seq) + 1
           OR l.prev_hash <> coalesce(l.previous_hash, l.checkpoint_hash)
           OR l.row_hash <> execution_log_hash(l.prev_hash, l.user_id, l.seq, l.order_id, l.event, l.reason,
                                               l.error_code, l.transaction_id, l.details, l.created_at))
    UNION ALL
    SELECT cp.user_id, cp.execution_log_seq, 'the row verified at this seq is missing or its row_hash has changed'
    FROM accounts_of(p_user_id) a
    JOIN chain_checkpoints cp ON cp.user_id = a.user_id
    WHERE cp.execution_log_seq > 0
      AND NOT EXISTS (SELECT 1 FROM execution_logs e
                      WHERE e.user_id = cp.user_id AND e.seq = cp.execution_log_seq AND e.row_hash = cp.execution_log_hash)
$$;

-- The latest ledger checkpoint of each account (none until retention first archives its audit rows).
CREATE OR REPLACE FUNCTION latest_ledger_checkpoint(p_user_id uuid)
    RETURNS TABLE (last_audit_id bigint, balance numeric, used_margin numeric, created_at timestamptz)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT c.last_audit_id, c.balance, c.used_margin, c.created_at
    FROM ledger_checkpoints c
    WHERE c.user_id = p_user_id
    ORDER BY c.last_audit_id DESC
    LIMIT 1
$$;

-- Where an account's ledger is known to stand: the later of its latest ledger checkpoint (retention archived the rows
-- up to it) and its chain checkpoint (the audit chain verified up to it). Reconciliation and the audit chain check
-- start here. No SET clause and schema-qualified names, so the planner inlines it into the queries that call it once
-- per account (a function call per account would cost more than the new rows it spares).
CREATE OR REPLACE FUNCTION ledger_start(p_user_id uuid)
    RETURNS TABLE (last_audit_id bigint, balance numeric, used_margin numeric)
    LANGUAGE sql STABLE
AS $$
    SELECT s.last_audit_id, s.balance, s.used_margin
    FROM (
        (SELECT c.last_audit_id, c.balance, c.used_margin FROM trading.ledger_checkpoints c
         WHERE c.user_id = p_user_id ORDER BY c.last_audit_id DESC LIMIT 1)
        UNION ALL
        SELECT v.audit_id, v.audit_balance, v.audit_margin FROM trading.chain_checkpoints v WHERE v.user_id = p_user_id AND v.audit_id > 0
    ) s
    ORDER BY s.last_audit_id DESC
    LIMIT 1
$$;

-- Audit rows after the account's ledger start that do not continue the previous one (before = previous after); the
-- first continues the ledger start, and an account's first row ever starts from zero. A chain checkpoint whose row
-- still exists must still say what was verified.
CREATE OR REPLACE FUNCTION balance_audit_chain_breaks(p_user_id uuid DEFAULT NULL)
    RETURNS TABLE (user_id uuid, audit_id bigint, problem text)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT b.user_id, b.id,
           format('before (%s, %s) is not the previous after (%s, %s)',
                  trim_scale(b.balance_before), trim_scale(b.margin_before),
                  trim_scale(coalesce(b.previous_balance, st.balance, 0)), trim_scale(coalesce(b.previous_margin, st.used_margin, 0)))
    FROM accounts_of(p_user_id) a
    -- One row always (ledger_start has at most one), so the id bound is a parameter of the index scan below.
    CROSS JOIN LATERAL (
        SELECT coalesce(max(s.last_audit_id), 0) AS last_audit_id, max(s.balance) AS balance, max(s.used_margin) AS used_margin
        FROM ledger_start(a.user_id) s
    ) st
    CROSS JOIN LATERAL (
        SELECT r.*,
               lag(r.balance_after) OVER w AS previous_balance,
               lag(r.margin_after) OVER w AS previous_margin
        FROM balance_audit_log r
        WHERE r.user_id = a.user_id AND r.id > st.last_audit_id
        WINDOW w AS (ORDER BY r.id)
    ) b
    WHERE (b.balance_before <> coalesce(b.previous_balance, st.balance, 0) OR b.margin_before <> coalesce(b.previous_margin, st.used_margin, 0))
    UNION ALL
    SELECT cp.user_id, cp.audit_id,
           CASE WHEN r.id IS NULL THEN 'the row verified at this id is missing and was never archived'
                ELSE 'the row verified at this id now says another balance or margin' END
    FROM accounts_of(p_user_id) a
    JOIN chain_checkpoints cp ON cp.user_id = a.user_id
    LEFT JOIN balance_audit_log r ON r.user_id = cp.user_id AND r.id = cp.audit_id
    WHERE cp.audit_id > 0
      AND (r.id IS NULL AND cp.audit_id > coalesce((SELECT max(c.last_audit_id) FROM ledger_checkpoints c WHERE c.user_id = cp.user_id), 0)
           OR r.balance_after <> cp.audit_balance OR r.margin_after <> cp.audit_margin)
$$;

-- Accounts whose balance or used_margin differs from their ledger: the ledger start plus the deltas of every audit
-- row after it.
CREATE OR REPLACE FUNCTION ledger_mismatches(p_user_id uuid DEFAULT NULL)
    RETURNS TABLE (user_id uuid, balance numeric, ledger_balance numeric, used_margin numeric, ledger_used_margin numeric)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT acc.user_id, acc.balance, l.balance, acc.used_margin, l.used_margin
    FROM accounts acc
    -- One row always, so the id bound is a parameter of the index scan below (incremental verification).
    CROSS JOIN LATERAL (
        SELECT coalesce(max(s.last_audit_id), 0) AS last_audit_id, max(s.balance) AS balance, max(s.used_margin) AS used_margin
        FROM ledger_start(acc.user_id) s
    ) cp
    CROSS JOIN LATERAL (
        SELECT coalesce(cp.balance, 0) + coalesce(sum(b.balance_after - b.balance_before), 0) AS balance,
               coalesce(cp.used_margin, 0) + coalesce(sum(b.margin_after - b.margin_before), 0) AS used_margin
        FROM balance_audit_log b
        WHERE b.user_id = acc.user_id AND b.id > cp.last_audit_id
    ) l
    WHERE (p_user_id IS NULL OR acc.user_id = p_user_id)
      AND (acc.balance <> l.balance OR acc.used_margin <> l.used_margin)
$$;

-- Accounts whose used_margin is not the sum of their open positions' margin.
CREATE OR REPLACE FUNCTION margin_mismatches(p_user_id uuid DEFAULT NULL)
    RETURNS TABLE (user_id uuid, used_margin numeric, positions_margin numeric)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT acc.user_id, acc.used_margin, coalesce(p.total, 0)
    FROM accounts acc
    LEFT JOIN LATERAL (
        SELECT sum(pos.used_margin) AS total
        FROM positions pos
        WHERE pos.user_id = acc.user_id AND pos.status = 'open'
    ) p ON true
    WHERE (p_user_id IS NULL OR acc.user_id = p_user_id)
      AND acc.used_margin <> coalesce(p.total, 0)
$$;

-- Checks that one order transaction (its execution or its rollback transaction id) left every row it
-- should, and nothing contradicts it. Returns each check by name; data.valid is true when all pass.
CREATE OR REPLACE FUNCTION validate_atomic_execution_integrity(p_transaction_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user       uuid := app_current_user();
    v_order      orders%ROWTYPE;
    v_checks     jsonb := '[]'::jsonb;
    v_executed   boolean;
    v_count      integer;
    v_fill       fills%ROWTYPE;
    v_position   positions%ROWTYPE;
    v_audit      record;
    v_events     text[];
    v_expected   text[];
    v_detail     text;
    v_checkpoint record;
    v_audit_rows integer;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_transaction_id IS NULL THEN
        RETURN validation_error('transaction_id', 'is required');
    END IF;

    SELECT * INTO v_order
    FROM orders
    WHERE user_id = v_user AND (transaction_id = p_transaction_id OR rollback_transaction_id = p_transaction_id);
    IF NOT FOUND THEN
        RETURN error_envelope('ORDER_NOT_FOUND', 'no order of yours has this transaction id',
            jsonb_build_object('transaction_id', p_transaction_id));
    END IF;
    v_executed := v_order.status IN ('executed', 'rolled_back');
    -- An execution that moved neither balance nor margin leaves no audit row (the trigger fires on change).
    v_audit_rows := CASE WHEN v_executed AND (v_order.balance_delta <> 0 OR v_order.margin_delta <> 0) THEN 1 ELSE 0 END;

    -- order_state: the order row agrees with itself.
    v_detail := CASE
        WHEN v_executed AND (v_order.filled_quantity <> v_order.quantity OR v_order.executed_price IS NULL) THEN 'executed but not fully filled at a price'
        WHEN v_executed AND v_order.balance_delta <> coalesce(v_order.realized_pnl, 0) - v_order.commission + v_order.write_off
            THEN 'balance_delta is not realized_pnl - commission + write_off'
        WHEN NOT v_executed AND v_order.filled_quantity <> 0 THEN 'not executed but has a filled quantity'
        WHEN v_order.type = 'limit' AND v_executed AND ((v_order.side = 'buy' AND v_order.executed_price > v_order.limit_price)
                                                     OR (v_order.side = 'sell' AND v_order.executed_price < v_order.limit_price)) THEN 'executed through its limit'
    END;
    v_checks := v_checks || jsonb_build_object('name', 'order_state', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, v_order.status));

    -- fill_matches_order: one fill with the order's quantity, price and commission, or none.
    SELECT count(*) INTO v_count FROM fills WHERE user_id = v_user AND order_id = v_order.id;
    SELECT * INTO v_fill FROM fills WHERE user_id = v_user AND order_id = v_order.id LIMIT 1;
    v_detail := CASE
        WHEN v_executed AND v_count <> 1 THEN format('%s fills, expected 1', v_count)
        WHEN v_executed AND (v_fill.quantity <> v_order.filled_quantity OR v_fill.price <> v_order.executed_price
                             OR v_fill.commission <> v_order.commission OR v_fill.side <> v_order.side
                             OR v_fill.symbol <> v_order.symbol OR v_fill.transaction_id <> v_order.transaction_id)
            THEN 'the fill differs from the order (quantity, price, commission, side, symbol or transaction)'
        WHEN NOT v_executed AND v_count <> 0 THEN format('%s fills for an order that did not execute', v_count)
    END;
    v_checks := v_checks || jsonb_build_object('name', 'fill_matches_order', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, format('%s fill(s)', v_count)));

    -- position_link: an executed order points at a position of its symbol that has not gone backwards.
    IF v_executed THEN
        SELECT * INTO v_position FROM positions WHERE user_id = v_user AND id = v_order.position_id;
        v_detail := CASE
            WHEN NOT FOUND THEN 'the order''s position does not exist'
            WHEN v_position.symbol <> v_order.symbol THEN 'the position is for another symbol'
            WHEN v_position.version < v_order.position_version_after THEN 'the position is older than the order left it'
        END;
    ELSE
        v_detail := CASE WHEN v_order.position_id IS NOT NULL THEN 'an order that did not execute points at a position' END;
    END IF;
    v_checks := v_checks || jsonb_build_object('name', 'position_link', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, 'ok'));

    -- audit_matches_order: the audit rows of the execution (and of the rollback) carry exactly the order's deltas.
    SELECT count(*) AS n,
           coalesce(sum(balance_after - balance_before), 0) AS balance_delta,
           coalesce(sum(margin_after - margin_before), 0) AS margin_delta,
           bool_and(order_id IS NOT DISTINCT FROM v_order.id) AS same_order
    INTO v_audit
    FROM balance_audit_log
    WHERE user_id = v_user AND transaction_id = v_order.transaction_id;
    SELECT * INTO v_checkpoint FROM latest_ledger_checkpoint(v_user);
    v_detail := CASE
        WHEN v_executed AND v_audit.n = 0 AND v_checkpoint.created_at IS NOT NULL AND v_checkpoint.created_at > v_order.executed_at THEN NULL
        WHEN v_executed AND v_audit.n <> v_audit_rows THEN format('%s audit rows, expected %s', v_audit.n, v_audit_rows)
        WHEN v_executed AND (v_audit.balance_delta <> v_order.balance_delta OR v_audit.margin_delta <> v_order.margin_delta OR NOT coalesce(v_audit.same_order, true))
            THEN format('audit deltas (%s, %s) differ from the order''s (%s, %s)', trim_scale(v_audit.balance_delta), trim_scale(v_audit.margin_delta),
                        trim_scale(v_order.balance_delta), trim_scale(v_order.margin_delta))
        WHEN NOT v_executed AND v_audit.n <> 0 THEN format('%s audit rows for an order that moved no money', v_audit.n)
    END;
    IF v_detail IS NULL AND v_order.status = 'rolled_back' THEN
        SELECT count(*) AS n,
               coalesce(sum(balance_after - balance_before), 0) AS balance_delta,
               coalesce(sum(margin_after - margin_before), 0) AS margin_delta,
               bool_and(order_id IS NOT DISTINCT FROM v_order.id) AS same_order
        INTO v_audit
        FROM balance_audit_log
        WHERE user_id = v_user AND transaction_id = v_order.rollback_transaction_id;
        IF v_audit.n = 0 AND v_checkpoint.created_at IS NOT NULL AND v_checkpoint.created_at > v_order.rolled_back_at THEN
            NULL;
        ELSIF v_audit.n <> v_audit_rows OR v_audit.balance_delta <> -v_order.balance_delta OR v_audit.margin_delta <> -v_order.margin_delta
              OR NOT coalesce(v_audit.same_order, true) THEN
            v_detail := 'the rollback''s audit row does not reverse the order''s deltas exactly';
        END IF;
    END IF;
    v_checks := v_checks || jsonb_build_object('name', 'audit_matches_order', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, 'ok'));

    -- execution_log: the lifecycle events this status implies, in order.
    SELECT coalesce(array_agg(event ORDER BY seq), '{}') INTO v_events
    FROM execution_logs WHERE user_id = v_user AND order_id = v_order.id;
    v_expected := CASE v_order.status
        WHEN 'executed' THEN ARRAY[execution_event_of(v_order.type)]
        WHEN 'rolled_back' THEN ARRAY[execution_event_of(v_order.type), 'ROLLED_BACK']
        WHEN 'rejected' THEN ARRAY['REJECTED']
        WHEN 'failed' THEN ARRAY['FAILED']
        ELSE '{}'::text[]
    END;
    v_detail := CASE WHEN v_events <> v_expected THEN format('events %s, expected %s', v_events, v_expected) END;
    v_checks := v_checks || jsonb_build_object('name', 'execution_log', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, array_to_string(v_events, ',')));

    -- hash_chain: the account's whole execution-log chain verifies.
    SELECT format('seq %s: %s', seq, problem) INTO v_detail FROM execution_log_chain_breaks(v_user) ORDER BY seq LIMIT 1;
    v_checks := v_checks || jsonb_build_object('name', 'hash_chain', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, 'ok'));

    -- audit_chain: every audit row continues the previous one.
    SELECT format('audit row %s: %s', audit_id, problem) INTO v_detail FROM balance_audit_chain_breaks(v_user) ORDER BY audit_id LIMIT 1;
    v_checks := v_checks || jsonb_build_object('name', 'audit_chain', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, 'ok'));

    -- ledger: the account equals its checkpoint plus the audited deltas, and its margin the open positions'.
    SELECT format('balance %s vs ledger %s, used_margin %s vs ledger %s', trim_scale(balance), trim_scale(ledger_balance),
                  trim_scale(used_margin), trim_scale(ledger_used_margin))
    INTO v_detail FROM ledger_mismatches(v_user);
    IF v_detail IS NULL THEN
        SELECT format('used_margin %s vs open positions %s', trim_scale(used_margin), trim_scale(positions_margin))
        INTO v_detail FROM margin_mismatches(v_user);
    END IF;
    v_checks := v_checks || jsonb_build_object('name', 'account_matches_ledger', 'passed', v_detail IS NULL, 'detail', coalesce(v_detail, 'ok'));

    -- write_off_matches_order (risk, R__12): a write-off the order booked is in the write_offs ledger, reversed
    -- by its rollback, and left the balance at 0; an order without one has no entry.
    SELECT problem INTO v_detail FROM write_off_mismatches(v_user) WHERE order_id = v_order.id LIMIT 1;
    v_checks := v_checks || jsonb_build_object('name', 'write_off_matches_order', 'passed', v_detail IS NULL,
                                               'detail', coalesce(v_detail, format('write-off %s', trim_scale(v_order.write_off))));

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
        'transaction_id', p_transaction_id,
        'order_id', v_order.id,
        'order_status', v_order.status,
        'valid', NOT jsonb_path_exists(v_checks, '$[*] ? (@.passed == false)'),
        'checks', v_checks));
END
$$;

REVOKE ALL ON FUNCTION validate_atomic_execution_integrity(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION validate_atomic_execution_integrity(uuid) TO orders_api, orders_maintenance;
GRANT EXECUTE ON FUNCTION execution_log_chain_breaks(uuid) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION latest_ledger_checkpoint(uuid) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION balance_audit_chain_breaks(uuid) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION ledger_mismatches(uuid) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION margin_mismatches(uuid) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION ledger_start(uuid), accounts_of(uuid) TO orders_maintenance, orders_verifier;
GRANT EXECUTE ON FUNCTION execution_log_chain_breaks(uuid), latest_ledger_checkpoint(uuid), balance_audit_chain_breaks(uuid) TO orders_verifier;

RESET ROLE;
