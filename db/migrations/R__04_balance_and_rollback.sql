-- The audited money paths besides execute_order: adjustments/deposits and the exact rollback of an order.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- The single audited path for deposits, withdrawals and adjustments of the acting user's (app.user_id)
-- balance and used margin. Creates the account on a positive deposit when p_create_if_missing.
-- Returns status 201 when it created the account, 200 otherwise.
CREATE OR REPLACE FUNCTION update_user_balance_and_margin(
        p_balance_delta numeric,
        p_margin_delta numeric,
        p_reason text,
        p_create_if_missing boolean DEFAULT false)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user     uuid := app_current_user();
    v_tx       uuid := gen_random_uuid();
    v_account  accounts%ROWTYPE;
    v_created  boolean := false;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_balance_delta IS NULL OR scale(p_balance_delta) > 8 OR abs(p_balance_delta) >= 1e15 THEN
        RETURN validation_error('amount', 'must be a number with at most 8 decimals, below 1e15 in magnitude');
    ELSIF p_margin_delta IS NULL OR scale(p_margin_delta) > 8 OR abs(p_margin_delta) >= 1e15 THEN
        RETURN validation_error('margin_delta', 'must be a number with at most 8 decimals, below 1e15 in magnitude');
    ELSIF p_balance_delta = 0 AND p_margin_delta = 0 THEN
        RETURN validation_error('amount', 'nothing to change');
    ELSIF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 1 AND 200 THEN
        RETURN validation_error('reason', 'must be 1 to 200 characters');
    END IF;

    PERFORM set_audit_context(p_reason, NULL, v_tx);
    SELECT * INTO v_account FROM accounts WHERE user_id = v_user FOR UPDATE;
    IF NOT FOUND THEN
        IF NOT p_create_if_missing OR p_margin_delta <> 0 OR p_balance_delta <= 0 THEN
            RETURN no_account();
        END IF;
        -- A concurrent first deposit may create it too: the loser updates the winner's row instead.
        INSERT INTO accounts (user_id, balance) VALUES (v_user, p_balance_delta)
        ON CONFLICT (user_id) DO NOTHING
        RETURNING * INTO v_account;
        v_created := FOUND;
        IF NOT v_created THEN
            SELECT * INTO v_account FROM accounts WHERE user_id = v_user FOR UPDATE;
        END IF;
    END IF;

    IF NOT v_created THEN
        IF v_account.balance + p_balance_delta < 0 THEN
            PERFORM set_audit_context(NULL, NULL, NULL);
            RETURN error_envelope('INSUFFICIENT_BALANCE',
                format('balance %s cannot absorb %s', trim_scale(v_account.balance), trim_scale(p_balance_delta)));
        ELSIF v_account.used_margin + p_margin_delta < 0 THEN
            PERFORM set_audit_context(NULL, NULL, NULL);
            RETURN error_envelope('INSUFFICIENT_MARGIN',
                format('used margin %s cannot be reduced by %s', trim_scale(v_account.used_margin), trim_scale(-p_margin_delta)));
        END IF;
        UPDATE accounts
        SET balance = balance + p_balance_delta,
            used_margin = used_margin + p_margin_delta,
            version = version + 1,
            updated_at = now()
        WHERE user_id = v_user
        RETURNING * INTO v_account;
    END IF;
    PERFORM set_audit_context(NULL, NULL, NULL);

    RETURN envelope(true, NULL, NULL, CASE WHEN v_created THEN 201 ELSE 200 END, jsonb_build_object(
        'user_id', v_user,
        'transaction_id', v_tx,
        'created', v_created,
        'balance', trim_scale(v_account.balance),
        'used_margin', trim_scale(v_account.used_margin),
        'version', v_account.version));
END
$$;

-- An admin deposit into the acting user's (app.user_id) account, opening it on the first one, through
-- update_user_balance_and_margin (the audited path). With an Idempotency-Key (optional: deposits predate
-- keys) it follows the rules of execute_order: the same key and fingerprint replay the stored response with
-- "replayed": true, another fingerprint is IDEMPOTENCY_KEY_REUSED, input errors store nothing. Concurrent
-- requests with one key queue on a transaction-scoped advisory lock on (user, key): the account row may not
-- exist yet to lock, and the key's row is written only once the response is known.
CREATE OR REPLACE FUNCTION deposit(
        p_amount numeric,
        p_reason text,
        p_idempotency_key text DEFAULT NULL,
        p_request_fingerprint text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user    uuid := app_current_user();
    v_prior   record;
    v_result  jsonb;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_amount IS NULL OR p_amount <= 0 THEN
        RETURN validation_error('amount', 'must be greater than 0');
    ELSIF p_idempotency_key IS NOT NULL AND length(p_idempotency_key) NOT BETWEEN 1 AND 255 THEN
        RETURN validation_error('idempotency_key', 'must be 1 to 255 characters');
    ELSIF p_idempotency_key IS NOT NULL
          AND (p_request_fingerprint IS NULL OR length(p_request_fingerprint) NOT BETWEEN 1 AND 128) THEN
        RETURN validation_error('request_fingerprint', 'must be 1 to 128 characters');
    END IF;

    IF p_idempotency_key IS NULL THEN
        RETURN update_user_balance_and_margin(p_amount, 0, p_reason, true);
    END IF;

    PERFORM pg_advisory_xact_lock(hashtextextended('deposit ' || v_user::text || ' ' || p_idempotency_key, 0));
    -- Under the lock every earlier request with this key has committed or rolled back.
    SELECT request_fingerprint, response INTO v_prior
    FROM deposit_requests
    WHERE user_id = v_user AND idempotency_key = p_idempotency_key;
    IF FOUND THEN
        RETURN idempotent_replay(v_prior.request_fingerprint, p_request_fingerprint, v_prior.response,
                                 jsonb_build_object('transaction_id', v_prior.response -> 'data' -> 'transaction_id'));
    END IF;

    v_result := update_user_balance_and_margin(p_amount, 0, p_reason, true);
    IF (v_result ->> 'success')::boolean THEN
        INSERT INTO deposit_requests (user_id, idempotency_key, request_fingerprint, transaction_id, response)
        VALUES (v_user, p_idempotency_key, p_request_fingerprint, (v_result -> 'data' ->> 'transaction_id')::uuid, v_result);
    END IF;
    RETURN v_result;
END
$$;

-- Rolls back an order of the acting user (app.user_id):
--   pending/executing -> failed (no money had moved; the order is closed with a FAILED log);
--   executed -> exact compensation from the recorded deltas and the position before-image, only while
--     the position is unchanged since the order (else ROLLBACK_CONFLICT); status rolled_back; a write-off the
--     order booked is reversed by a write_offs entry of the opposite sign. The same for the system's closes
--     (stop-loss, take-profit, liquidation): the position is reopened as it was, stops included;
--   anything else (rejected, failed, rolled_back: i.e. never twice) -> INVALID_ORDER_STATE.
CREATE OR REPLACE FUNCTION rollback_order_execution(p_order_id uuid, p_reason text)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user       uuid := app_current_user();
    v_tx         uuid := gen_random_uuid();
    v_now        timestamptz := now();
    v_account    accounts%ROWTYPE;
    v_order      orders%ROWTYPE;
    v_position   positions%ROWTYPE;
    v_before     positions%ROWTYPE;
    v_old        positions%ROWTYPE;
    v_flip       boolean := false;
    v_conflict   text;
    v_sqlstate   text;
    v_error      text;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_order_id IS NULL THEN
        RETURN validation_error('order_id', 'is required');
    ELSIF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 1 AND 500 THEN
        RETURN validation_error('reason', 'must be 1 to 500 characters');
    END IF;

    -- The row locks are taken inside the exception block's subtransaction, as in execute_order: locks taken
    -- outside it and the block's foreign-key checks on the same rows would make MultiXacts of them.
    BEGIN
        -- Account first, then order and position: the lock order of execute_order.
        SELECT * INTO v_account FROM accounts WHERE user_id = v_user FOR UPDATE;
        SELECT * INTO v_order FROM orders WHERE user_id = v_user AND id = p_order_id FOR UPDATE;
        IF NOT FOUND THEN
            RETURN error_envelope('ORDER_NOT_FOUND', 'no such order', jsonb_build_object('order_id', p_order_id));
        END IF;

        IF v_order.status IN ('pending', 'executing') THEN
            UPDATE orders
            SET status = 'failed',
                failure_reason = p_reason,
                error_code = 'INTERNAL_ERROR',
                rollback_transaction_id = v_tx,
                response = error_envelope('INTERNAL_ERROR', 'the order did not complete and was failed: ' || p_reason,
                                          jsonb_build_object('order_id', v_order.id, 'status', 'failed')),
                updated_at = v_now
            WHERE user_id = v_user AND id = v_order.id;
            INSERT INTO execution_logs (user_id, order_id, event, reason, error_code, transaction_id, details)
            VALUES (v_user, v_order.id, 'FAILED', p_reason, 'INTERNAL_ERROR', v_tx,
                    jsonb_build_object('previous_status', v_order.status));
            RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
                'order_id', v_order.id, 'status', 'failed', 'previous_status', v_order.status, 'transaction_id', v_tx));
        ELSIF v_order.status <> 'executed' THEN
            RETURN error_envelope('INVALID_ORDER_STATE',
                format('the order is %s; only pending, executing or executed orders can be rolled back', v_order.status),
                jsonb_build_object('order_id', v_order.id, 'status', v_order.status));
        END IF;

        SELECT * INTO v_position FROM positions WHERE user_id = v_user AND id = v_order.position_id FOR UPDATE;
        IF v_order.position_before IS NOT NULL THEN
            v_before := jsonb_populate_record(NULL::positions, v_order.position_before);
            v_flip := v_before.id <> v_position.id;
        END IF;

        IF v_position.version <> v_order.position_version_after THEN
            v_conflict := format('position %s changed since the order (version %s, the order left %s)',
                                 v_position.id, v_position.version, v_order.position_version_after);
        ELSIF v_flip THEN
            SELECT * INTO v_old FROM positions WHERE user_id = v_user AND id = v_before.id FOR UPDATE;
            IF v_old.version <> v_before.version + 1 THEN
                v_conflict := format('position %s changed since the order closed it', v_old.id);
            END IF;
        END IF;
        IF v_conflict IS NULL AND v_before.id IS NOT NULL AND v_before.status = 'open' AND EXISTS (
               SELECT 1 FROM positions
               WHERE user_id = v_user AND symbol = v_order.symbol AND status = 'open'
                 AND id <> v_before.id AND id <> v_position.id) THEN
            v_conflict := format('another %s position was opened since the order', v_order.symbol);
        END IF;
        IF v_conflict IS NULL AND v_account.balance - v_order.balance_delta < 0 THEN
            v_conflict := format('compensating %s would leave a negative balance', trim_scale(v_order.balance_delta));
        END IF;
        IF v_conflict IS NULL AND v_account.used_margin - v_order.margin_delta < 0 THEN
            v_conflict := format('compensating margin %s would leave negative used margin', trim_scale(v_order.margin_delta));
        END IF;
        IF v_conflict IS NOT NULL THEN
            RETURN error_envelope('ROLLBACK_CONFLICT', v_conflict, jsonb_build_object('order_id', v_order.id));
        END IF;

        -- Undo the position: a position the order opened is closed (released), one it changed is restored.
        IF v_before.id IS NULL OR v_flip THEN
            UPDATE positions
            SET status = 'closed', quantity = 0, used_margin = 0, closed_at = v_now,
                version = version + 1, last_transaction_id = v_tx, updated_at = v_now
            WHERE user_id = v_user AND id = v_position.id;
        END IF;
        IF v_before.id IS NOT NULL THEN
            UPDATE positions
            SET side = v_before.side,
                quantity = v_before.quantity,
                avg_entry_price = v_before.avg_entry_price,
                used_margin = v_before.used_margin,
                stop_loss = v_before.stop_loss,
                take_profit = v_before.take_profit,
                commission_paid = v_before.commission_paid,
                realized_pnl = v_before.realized_pnl,
                status = v_before.status,
                closed_at = v_before.closed_at,
                version = version + 1,
                last_transaction_id = v_tx,
                updated_at = v_now
            WHERE user_id = v_user AND id = v_before.id;
        END IF;

        UPDATE orders
        SET status = 'rolled_back', rolled_back_at = v_now, failure_reason = p_reason,
            rollback_transaction_id = v_tx, updated_at = v_now
        WHERE user_id = v_user AND id = v_order.id;
        INSERT INTO execution_logs (user_id, order_id, event, reason, transaction_id, details)
        VALUES (v_user, v_order.id, 'ROLLED_BACK', p_reason, v_tx,
                jsonb_build_object('balance_delta', -v_order.balance_delta, 'margin_delta', -v_order.margin_delta,
                                   'executed_transaction_id', v_order.transaction_id));

        PERFORM set_audit_context('order_rolled_back', v_order.id, v_tx);
        UPDATE accounts
        SET balance = balance - v_order.balance_delta,
            used_margin = used_margin - v_order.margin_delta,
            realized_pnl = realized_pnl - coalesce(v_order.realized_pnl, 0),
            version = version + 1,
            updated_at = v_now
        WHERE user_id = v_user
        RETURNING * INTO v_account;
        PERFORM set_audit_context(NULL, NULL, NULL);
        IF v_order.write_off > 0 THEN
            INSERT INTO write_offs (user_id, order_id, transaction_id, reason, amount)
            VALUES (v_user, v_order.id, v_tx, 'order_rolled_back', -v_order.write_off);
        END IF;

        RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
            'order_id', v_order.id,
            'status', 'rolled_back',
            'transaction_id', v_tx,
            'executed_transaction_id', v_order.transaction_id,
            'balance_delta', trim_scale(-v_order.balance_delta),
            'margin_delta', trim_scale(-v_order.margin_delta),
            'write_off', trim_scale(-v_order.write_off),
            'account', jsonb_build_object('balance', trim_scale(v_account.balance), 'used_margin', trim_scale(v_account.used_margin))));
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE IN ('40001', '40P01') THEN
            RAISE;
        END IF;
        GET STACKED DIAGNOSTICS v_sqlstate = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        RETURN internal_error('rollback_order_execution', v_sqlstate, v_error, 'the rollback failed; nothing was changed',
                              NULL, v_user, p_order_id, v_tx, jsonb_build_object('order_id', p_order_id, 'transaction_id', v_tx));
    END;
END
$$;

REVOKE ALL ON FUNCTION update_user_balance_and_margin(numeric, numeric, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION deposit(numeric, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION rollback_order_execution(uuid, text) FROM PUBLIC;
-- Deposits, adjustments and rollbacks are admin and maintenance work, never a trader's own call.
GRANT EXECUTE ON FUNCTION update_user_balance_and_margin(numeric, numeric, text, boolean) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION deposit(numeric, text, text, text) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION rollback_order_execution(uuid, text) TO orders_maintenance;

RESET ROLE;
