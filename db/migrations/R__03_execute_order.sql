-- execute_order: one call = one round trip = one transaction (docs/architecture.md).
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Executes a market or limit (immediate-or-cancel) order at the instrument's last price for the acting
-- user (app.user_id). Waits for the account's turn (R__01), then locks the account, then the position: always
-- that order, so no deadlocks.
--   same direction (or no position): weighted average entry, used_margin += margin, balance -= commission;
--   opposite direction: closes min(qty, position) realizing PnL and releasing margin pro rata, and opens
--   the rest on the other side.
-- Checks, for an order that opens exposure (a new position, more of one, or the rest of a flip): the new
-- balance must not be negative (INSUFFICIENT_BALANCE), and free margin (equity - used_margin, the existing
-- position marked at the execution price) must stay >= 0 (INSUFFICIENT_MARGIN), i.e. free margin before >=
-- margin + commission. A reduce-only order (it only shrinks or closes a position) is never refused for
-- balance or margin: a trader can always get out; p_reduce_only asks for that and nothing more: an order that
-- would open or add exposure (no position left to reduce, the same side, more than the position) is then rejected
-- (REDUCE_ONLY_REJECTED), so a close that lost a race with a stop does not open the other side. When a reduce-only
-- order's realized loss and commission exceed the balance, the balance goes to 0 and the shortfall is written off
-- (orders.write_off and a write_offs ledger entry).
-- stop_loss / take_profit are for the position the order opens or adds to: on tick, and on the right side of
-- the execution price (a buy: stop_loss below, take_profit above; a sell: the reverse). An order that only
-- reduces a position takes neither (PATCH /api/positions/{id} changes a position's stops).
-- Outcomes:
--   input errors, unknown user or instrument: nothing is written; the key stays free for a corrected retry;
--   business rejections: the order is stored as rejected with its response, an execution log and an
--     error_log row; money never moves;
--   success: position, order, fill, execution log, account (whose trigger writes the audit row);
--   unexpected errors: everything is rolled back, error_log records it, INTERNAL_ERROR is returned;
--     serialization failures and deadlocks are re-raised so the caller retries.
-- The same key with the same fingerprint returns the stored response with "replayed": true; with another
-- fingerprint it is IDEMPOTENCY_KEY_REUSED.
-- Reading guide. execute_order runs these parts in order; each is named where it starts.
--   1. validation   the request alone (order_request_error), then under the account lock the idempotency key,
--                   then the request against its instrument (order_instrument_error, stop_levels_error);
--   2. netting      what the order does to the trader's position at the execution price: how much it closes
--                   (realized PnL, released margin) and opens (margin), the commission, the new balance;
--   3. risk check   the business rejections (account, instrument, price, balance, free margin), recorded under
--                   the key as a rejected order;
--   4. writes       position, order, fill, execution log, write-off, account (whose trigger writes the audit row).
-- The validation helpers are SQL functions that PostgreSQL inlines into the expression that calls them, and the
-- other parts are labelled blocks of this one function: naming the parts costs the call nothing (docs/scale.md).

-- Validation of the request alone: the first problem as a VALIDATION_ERROR envelope, or NULL. The HTTP layer
-- validates first; this is the database's backstop.
CREATE OR REPLACE FUNCTION order_request_error(
        p_side text, p_type text, p_quantity numeric, p_limit_price numeric, p_stop_loss numeric, p_take_profit numeric,
        p_idempotency_key text, p_request_fingerprint text)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_side IS NULL OR p_side NOT IN ('buy', 'sell') THEN
            trading.validation_error('side', 'must be buy or sell')
        WHEN p_type IS NULL OR p_type NOT IN ('market', 'limit') THEN
            trading.validation_error('type', 'must be market or limit')
        WHEN p_quantity IS NULL OR p_quantity <= 0 THEN
            trading.validation_error('quantity', 'must be greater than 0')
        WHEN NOT trading.within_money_range(p_quantity) THEN
            trading.validation_error('quantity', 'must have at most 8 decimals and be below 1e12')
        WHEN p_type = 'limit' AND (p_limit_price IS NULL OR p_limit_price <= 0) THEN
            trading.validation_error('limit_price', 'a limit order needs a limit_price greater than 0')
        WHEN p_type = 'market' AND p_limit_price IS NOT NULL THEN
            trading.validation_error('limit_price', 'a market order takes no limit_price')
        WHEN p_limit_price IS NOT NULL AND NOT trading.within_money_range(p_limit_price) THEN
            trading.validation_error('limit_price', 'must have at most 8 decimals and be below 1e12')
        WHEN p_stop_loss IS NOT NULL AND (p_stop_loss <= 0 OR NOT trading.within_money_range(p_stop_loss)) THEN
            trading.validation_error('stop_loss', 'must be greater than 0, with at most 8 decimals, below 1e12')
        WHEN p_take_profit IS NOT NULL AND (p_take_profit <= 0 OR NOT trading.within_money_range(p_take_profit)) THEN
            trading.validation_error('take_profit', 'must be greater than 0, with at most 8 decimals, below 1e12')
        WHEN p_idempotency_key IS NULL OR length(p_idempotency_key) NOT BETWEEN 1 AND 255 THEN
            trading.validation_error('idempotency_key', 'must be 1 to 255 characters')
        WHEN p_request_fingerprint IS NULL OR length(p_request_fingerprint) NOT BETWEEN 1 AND 128 THEN
            trading.validation_error('request_fingerprint', 'must be 1 to 128 characters')
    END
$$;

-- Validation of the request against its instrument (and whether its strategy exists): the first problem as a
-- VALIDATION_ERROR envelope, or NULL.
CREATE OR REPLACE FUNCTION order_instrument_error(
        p_instrument trading.instruments, p_quantity numeric, p_limit_price numeric, p_strategy_known boolean)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_quantity < (p_instrument).min_qty THEN
            trading.validation_error('quantity', format('must be at least %s', trim_scale((p_instrument).min_qty)))
        WHEN mod(p_quantity, (p_instrument).qty_step) <> 0 THEN
            trading.validation_error('quantity', format('must be a multiple of %s', trim_scale((p_instrument).qty_step)))
        WHEN p_limit_price IS NOT NULL AND mod(p_limit_price, (p_instrument).tick_size) <> 0 THEN
            trading.validation_error('limit_price', format('must be a multiple of %s', trim_scale((p_instrument).tick_size)))
        WHEN NOT p_strategy_known THEN
            trading.validation_error('strategy_id', 'no such strategy')
        WHEN (p_instrument).last_price IS NOT NULL
             AND p_quantity * (p_instrument).contract_size * (p_instrument).last_price >= 1e15 THEN
            trading.validation_error('quantity', 'the notional value is too large')
    END
$$;

CREATE OR REPLACE FUNCTION execute_order(
        p_symbol text,
        p_side text,
        p_type text,
        p_quantity numeric,
        p_limit_price numeric,
        p_idempotency_key text,
        p_request_fingerprint text,
        p_strategy_id uuid DEFAULT NULL,
        p_stop_loss numeric DEFAULT NULL,
        p_take_profit numeric DEFAULT NULL,
        p_reduce_only boolean DEFAULT false)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user        uuid := app_current_user();
    v_now         timestamptz := now();
    v_order_id    uuid := time_ordered_uuid();
    v_tx          uuid := time_ordered_uuid();
    v_account     accounts%ROWTYPE;
    v_instrument  instruments%ROWTYPE;
    v_position    positions%ROWTYPE;
    v_result      positions%ROWTYPE;
    v_has_position boolean;
    v_strategy_known boolean := true;
    v_prior       record;
    v_code        text;
    v_message     text;
    v_price       numeric;
    v_new_side    text := CASE p_side WHEN 'buy' THEN 'long' ELSE 'short' END;
    v_commission  numeric;
    v_margin      numeric;
    v_close       numeric := 0;
    v_open        numeric;
    v_realized    numeric := 0;
    v_released    numeric := 0;
    v_balance     numeric;
    v_used        numeric;
    v_free        numeric;
    v_write_off   numeric := 0;
    v_response    jsonb;
    v_sqlstate    text;
    v_error       text;
BEGIN
    <<validation>>
    BEGIN
        IF v_user IS NULL THEN
            RETURN no_acting_user();
        END IF;
        v_response := order_request_error(p_side, p_type, p_quantity, p_limit_price, p_stop_loss, p_take_profit,
                                          p_idempotency_key, p_request_fingerprint);
        IF v_response IS NOT NULL THEN
            RETURN v_response;
        END IF;
    END validation;

    -- Everything from the account lock on runs in the exception block's subtransaction. Taking the lock
    -- outside it made the block's foreign-key checks (FOR KEY SHARE on the same account row, under the
    -- subtransaction's own xid) turn the row's lock into a MultiXact on every order, which every later
    -- locker of the account then had to read back (GetMultiXactIdMembers was 15% of PostgreSQL's CPU with
    -- eight clients on one account).
    BEGIN
        <<validation_under_lock>>
        BEGIN
            PERFORM wait_for_account_turn(v_user);
            SELECT * INTO v_account FROM accounts WHERE user_id = v_user FOR UPDATE;
            IF NOT FOUND THEN
                RETURN no_account();
            END IF;

            -- Under the account lock every earlier request with this key has committed or rolled back.
            SELECT id, status, request_fingerprint, response INTO v_prior
            FROM orders
            WHERE user_id = v_user AND idempotency_key = p_idempotency_key;
            IF FOUND THEN
                IF v_prior.response IS NULL AND v_prior.request_fingerprint = p_request_fingerprint THEN
                    RETURN error_envelope('IDEMPOTENCY_KEY_IN_USE',
                        format('the order for this Idempotency-Key is still %s; retry later', v_prior.status),
                        jsonb_build_object('order_id', v_prior.id, 'status', v_prior.status));
                END IF;
                RETURN idempotent_replay(v_prior.request_fingerprint, p_request_fingerprint, v_prior.response,
                                         jsonb_build_object('order_id', v_prior.id));
            END IF;

            SELECT * INTO v_instrument FROM instruments WHERE symbol = p_symbol;
            IF NOT FOUND THEN
                RETURN error_envelope('INSTRUMENT_NOT_FOUND', format('instrument %s does not exist', p_symbol),
                    jsonb_build_object('symbol', p_symbol));
            END IF;
            IF p_strategy_id IS NOT NULL THEN
                v_strategy_known := EXISTS (SELECT 1 FROM strategies WHERE user_id = v_user AND id = p_strategy_id);
            END IF;
            v_response := order_instrument_error(v_instrument, p_quantity, p_limit_price, v_strategy_known);
            IF v_response IS NULL AND (p_stop_loss IS NOT NULL OR p_take_profit IS NOT NULL) THEN
                v_response := stop_levels_error(v_new_side, p_stop_loss, p_take_profit, v_instrument.last_price, v_instrument.tick_size);
            END IF;
            IF v_response IS NOT NULL THEN
                RETURN v_response;
            END IF;
        END validation_under_lock;

        -- From here on the outcome is recorded under the key.
        <<risk_check>>
        BEGIN
            IF v_account.status <> 'active' THEN
                v_code := 'ACCOUNT_NOT_ACTIVE';
                v_message := format('the account is %s', v_account.status);
            ELSIF NOT v_instrument.tradable OR v_instrument.last_price IS NULL THEN
                v_code := 'INSTRUMENT_NOT_TRADABLE';
                v_message := format('instrument %s is not tradable now', p_symbol);
            ELSE
                v_price := v_instrument.last_price;
                IF p_type = 'limit' AND ((p_side = 'buy' AND v_price > p_limit_price) OR (p_side = 'sell' AND v_price < p_limit_price)) THEN
                    v_code := 'PRICE_NOT_MARKETABLE';
                    v_message := format('limit %s is not marketable at %s (immediate-or-cancel)', trim_scale(p_limit_price), trim_scale(v_price));
                END IF;
            END IF;

            IF v_code IS NULL THEN
                SELECT * INTO v_position
                FROM positions
                WHERE user_id = v_user AND symbol = p_symbol AND status = 'open'
                FOR UPDATE;
                v_has_position := FOUND;

                <<netting>>
                BEGIN
                    -- Same direction (or no position): all of it opens. Opposite: it closes up to the position,
                    -- realizing PnL and releasing margin pro rata, and opens the rest on the other side.
                    v_commission := round(p_quantity * v_instrument.contract_size * v_price * v_instrument.commission_rate, 8);
                    IF v_has_position AND v_position.side <> v_new_side THEN
                        v_close := least(p_quantity, v_position.quantity);
                        v_realized := position_unrealized_pnl(v_position.side, v_close, v_position.avg_entry_price, v_price,
                                                              v_instrument.contract_size);
                        v_released := CASE WHEN v_close = v_position.quantity THEN v_position.used_margin
                                           ELSE round(v_position.used_margin * v_close / v_position.quantity, 8) END;
                    END IF;
                    v_open := p_quantity - v_close;
                    IF v_open = 0 AND (p_stop_loss IS NOT NULL OR p_take_profit IS NOT NULL) THEN
                        RETURN validation_error(CASE WHEN p_stop_loss IS NOT NULL THEN 'stop_loss' ELSE 'take_profit' END,
                            'an order that only reduces a position sets no stops; change the position''s with PATCH /api/positions/{id}');
                    END IF;
                    v_margin := round(v_open * v_instrument.contract_size * v_price * v_instrument.margin_rate, 8);
                    v_balance := v_account.balance + v_realized - v_commission;
                    v_used := v_account.used_margin - v_released + v_margin;
                END netting;

                -- An order that opens exposure must leave the balance >= 0 and free margin (equity - used margin,
                -- this position marked at the execution price) >= 0. Reduce-only: never refused; a loss the
                -- balance cannot pay is written off.
                IF p_reduce_only AND v_open > 0 THEN
                    v_code := 'REDUCE_ONLY_REJECTED';
                    v_message := CASE
                        WHEN NOT v_has_position THEN format('reduce_only: there is no open %s position to reduce', p_symbol)
                        WHEN v_close = 0 THEN format('reduce_only: a %s adds to the %s position', p_side, v_position.side)
                        ELSE format('reduce_only: %s exceeds the %s position of %s', trim_scale(p_quantity), v_position.side,
                                    trim_scale(v_position.quantity)) END;
                ELSIF v_open = 0 THEN
                    IF v_balance < 0 THEN
                        v_write_off := -v_balance;
                        v_balance := 0;
                    END IF;
                ELSIF v_balance < 0 THEN
                    v_code := 'INSUFFICIENT_BALANCE';
                    v_message := format('balance %s cannot pay commission %s%s', trim_scale(v_account.balance), trim_scale(v_commission),
                                        CASE WHEN v_realized < 0 THEN format(' and realized loss %s', trim_scale(-v_realized)) ELSE '' END);
                ELSE
                    v_free := v_balance - v_used + account_unrealized_pnl(v_user, p_symbol)
                        + CASE WHEN v_has_position
                               THEN position_unrealized_pnl(v_position.side, v_position.quantity - v_close, v_position.avg_entry_price,
                                                            v_price, v_instrument.contract_size)
                               ELSE 0 END;
                    IF v_free < 0 THEN
                        v_code := 'INSUFFICIENT_MARGIN';
                        v_message := format('free margin is short by %s for margin %s and commission %s',
                                            trim_scale(-v_free), trim_scale(v_margin), trim_scale(v_commission));
                    END IF;
                END IF;
                IF v_code IS NOT NULL AND v_close > 0 THEN
                    v_message := v_message || format('; an order of %s only closes the position and is never refused', trim_scale(v_close));
                END IF;
            END IF;

            IF v_code IS NOT NULL THEN
                v_response := error_envelope(v_code, v_message,
                    jsonb_build_object('order_id', v_order_id, 'transaction_id', v_tx, 'status', 'rejected'));
                INSERT INTO orders (user_id, id, symbol, strategy_id, side, type, quantity, limit_price, stop_loss, take_profit,
                                    reduce_only, status, transaction_id, idempotency_key, request_fingerprint, response,
                                    failure_reason, error_code, created_at, updated_at)
                VALUES (v_user, v_order_id, p_symbol, p_strategy_id, p_side, p_type, p_quantity, p_limit_price, p_stop_loss, p_take_profit,
                        p_reduce_only, 'rejected', v_tx, p_idempotency_key, p_request_fingerprint, v_response,
                        v_message, v_code, v_now, v_now);
                INSERT INTO execution_logs (user_id, order_id, event, reason, error_code, transaction_id, details)
                VALUES (v_user, v_order_id, 'REJECTED', v_message, v_code, v_tx,
                        jsonb_build_object('symbol', p_symbol, 'side', p_side, 'type', p_type, 'quantity', p_quantity, 'price', v_price));
                INSERT INTO error_log (severity, error_code, message, context, user_id, order_id, transaction_id)
                VALUES ('warning', v_code, v_message, jsonb_build_object('symbol', p_symbol, 'side', p_side, 'quantity', p_quantity),
                        v_user, v_order_id, v_tx);
                RETURN v_response;
            END IF;
        END risk_check;

        -- Write order: position, order, fill, execution log, then the account (its audit trigger sees the new
        -- positions).
        <<writes>>
        BEGIN
            -- The position it had: more of it (same side), less of it, or closed ...
            IF v_has_position AND v_close = 0 THEN
                UPDATE positions
                SET quantity = quantity + p_quantity,
                    avg_entry_price = round((avg_entry_price * quantity + v_price * p_quantity) / (quantity + p_quantity), 12),
                    used_margin = used_margin + v_margin,
                    commission_paid = commission_paid + v_commission,
                    stop_loss = coalesce(p_stop_loss, stop_loss),
                    take_profit = coalesce(p_take_profit, take_profit),
                    version = version + 1,
                    last_transaction_id = v_tx,
                    updated_at = v_now
                WHERE user_id = v_user AND id = v_position.id
                RETURNING * INTO v_result;
            ELSIF v_close > 0 AND v_close < v_position.quantity THEN
                UPDATE positions
                SET quantity = quantity - v_close,
                    used_margin = used_margin - v_released,
                    realized_pnl = realized_pnl + v_realized,
                    commission_paid = commission_paid + v_commission,
                    version = version + 1,
                    last_transaction_id = v_tx,
                    updated_at = v_now
                WHERE user_id = v_user AND id = v_position.id
                RETURNING * INTO v_result;
            ELSIF v_close > 0 THEN
                UPDATE positions
                SET status = 'closed',
                    quantity = 0,
                    used_margin = 0,
                    closed_at = v_now,
                    realized_pnl = realized_pnl + v_realized,
                    commission_paid = commission_paid + CASE WHEN v_open = 0 THEN v_commission ELSE 0 END,
                    version = version + 1,
                    last_transaction_id = v_tx,
                    updated_at = v_now
                WHERE user_id = v_user AND id = v_position.id
                RETURNING * INTO v_result;
            END IF;
            -- ... and a new one for what opens on a side it had none of (no position before, or the rest of a flip).
            IF v_open > 0 AND NOT (v_has_position AND v_close = 0) THEN
                INSERT INTO positions (user_id, symbol, strategy_id, side, quantity, avg_entry_price, used_margin,
                                       stop_loss, take_profit, commission_paid, opened_at, last_transaction_id, updated_at)
                VALUES (v_user, p_symbol, p_strategy_id, v_new_side, v_open, v_price, v_margin,
                        p_stop_loss, p_take_profit, v_commission, v_now, v_tx, v_now)
                RETURNING * INTO v_result;
            END IF;

            -- The response, built once: returned now and stored for an exact replay.
            v_response := envelope(true, NULL, NULL, 201, jsonb_build_object(
                'order_id', v_order_id,
                'transaction_id', v_tx,
                'status', 'executed',
                'symbol', p_symbol,
                'side', p_side,
                'type', p_type,
                'quantity', trim_scale(p_quantity),
                'limit_price', trim_scale(p_limit_price),
                'executed_price', trim_scale(v_price),
                'executed_at', to_char(v_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                'commission', trim_scale(v_commission),
                'realized_pnl', trim_scale(v_realized),
                'write_off', trim_scale(v_write_off),
                'margin_delta', trim_scale(v_margin - v_released),
                'position', jsonb_build_object(
                    'id', v_result.id,
                    'side', v_result.side,
                    'status', v_result.status,
                    'quantity', trim_scale(v_result.quantity),
                    'avg_entry_price', trim_scale(v_result.avg_entry_price),
                    'used_margin', trim_scale(v_result.used_margin)),
                'account', jsonb_build_object(
                    'balance', trim_scale(v_balance),
                    'used_margin', trim_scale(v_used))));

            INSERT INTO orders (user_id, id, symbol, strategy_id, side, type, quantity, filled_quantity, limit_price, stop_loss, take_profit,
                                reduce_only, status, transaction_id, idempotency_key, request_fingerprint, response,
                                executed_price, executed_at, commission, balance_delta, margin_delta, realized_pnl, write_off,
                                position_id, position_before, position_version_after, created_at, updated_at)
            VALUES (v_user, v_order_id, p_symbol, p_strategy_id, p_side, p_type, p_quantity, p_quantity, p_limit_price, p_stop_loss, p_take_profit,
                    p_reduce_only, 'executed', v_tx, p_idempotency_key, p_request_fingerprint, v_response,
                    v_price, v_now, v_commission, v_realized - v_commission + v_write_off, v_margin - v_released, v_realized, v_write_off,
                    v_result.id, CASE WHEN v_has_position THEN to_jsonb(v_position) END, v_result.version, v_now, v_now);
            INSERT INTO fills (user_id, id, order_id, symbol, strategy_id, side, quantity, price, commission, realized_pnl, transaction_id, filled_at)
            VALUES (v_user, time_ordered_uuid(), v_order_id, p_symbol, p_strategy_id, p_side, p_quantity, v_price, v_commission, v_realized, v_tx, v_now);
            INSERT INTO execution_logs (user_id, order_id, event, transaction_id, details)
            VALUES (v_user, v_order_id, 'EXECUTED', v_tx,
                    jsonb_build_object('symbol', p_symbol, 'side', p_side, 'quantity', p_quantity, 'price', v_price,
                                       'commission', v_commission, 'realized_pnl', v_realized, 'position_id', v_result.id));
            IF v_write_off > 0 THEN
                INSERT INTO write_offs (user_id, order_id, transaction_id, reason, amount)
                VALUES (v_user, v_order_id, v_tx, 'negative_balance', v_write_off);
            END IF;

            -- The audit context of this one update (the settings set_audit_context writes, set directly: one
            -- statement instead of a function call), cleared after it.
            PERFORM set_config('app.audit_reason', 'order_executed', true),
                    set_config('app.order_id', v_order_id::text, true),
                    set_config('app.transaction_id', v_tx::text, true);
            UPDATE accounts
            SET balance = v_balance,
                used_margin = v_used,
                realized_pnl = realized_pnl + v_realized,
                version = version + 1,
                updated_at = v_now
            WHERE user_id = v_user;
            PERFORM set_config('app.audit_reason', '', true), set_config('app.order_id', '', true), set_config('app.transaction_id', '', true);
        END writes;
        RETURN v_response;
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE IN ('40001', '40P01') THEN
            RAISE;
        END IF;
        GET STACKED DIAGNOSTICS v_sqlstate = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        RETURN internal_error('execute_order', v_sqlstate, v_error, 'the order could not be executed; nothing was changed',
            jsonb_build_object('symbol', p_symbol, 'side', p_side, 'quantity', p_quantity, 'idempotency_key', p_idempotency_key),
            v_user, NULL, v_tx, jsonb_build_object('transaction_id', v_tx));
    END;
END
$$;

REVOKE ALL ON FUNCTION execute_order(text, text, text, numeric, numeric, text, text, uuid, numeric, numeric, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execute_order(text, text, text, numeric, numeric, text, text, uuid, numeric, numeric, boolean) TO orders_api;

RESET ROLE;
