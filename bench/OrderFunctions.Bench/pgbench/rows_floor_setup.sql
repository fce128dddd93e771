-- The floor of an order's database cost: a function that writes exactly the rows an executed order writes and does
-- nothing else (no validation, idempotency lookup, instrument read, netting, margin check, response building or
-- exception block), for docs/scale.md ("The floor"). Not part of the product: run it by hand on the benchmark's
-- database after a `bash bench/run.sh` (the next run recreates orders_bench without it), as a superuser:
--   psql -d orders_bench -f bench/OrderFunctions.Bench/pgbench/rows_floor_setup.sql
--   pgbench -n -M simple -c 8 -j 2 -T 15 -D traders=64 -D symbols=4 -f bench/OrderFunctions.Bench/pgbench/rows_floor.sql orders_bench
-- and compare with execute_order.sql and tpcb-like (orders_bench_tpcb) in interleaved rounds.
CREATE SCHEMA IF NOT EXISTS bench_floor AUTHORIZATION orders_owner;
GRANT USAGE ON SCHEMA bench_floor TO orders_api;
SET ROLE orders_owner;
CREATE OR REPLACE FUNCTION bench_floor.order_rows(p_symbol text, p_key text)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user     uuid := app_current_user();
    v_now      timestamptz := now();
    v_order_id uuid := time_ordered_uuid();
    v_tx       uuid := time_ordered_uuid();
    v_position positions%ROWTYPE;
    v_result   positions%ROWTYPE;
    v_has_position boolean;
BEGIN
    PERFORM 1 FROM accounts WHERE user_id = v_user FOR UPDATE;
    SELECT * INTO v_position FROM positions WHERE user_id = v_user AND symbol = p_symbol AND status = 'open' FOR UPDATE;
    v_has_position := FOUND;
    IF v_has_position THEN
        UPDATE positions
        SET quantity = quantity + 0.01, used_margin = used_margin + 0.1, commission_paid = commission_paid + 0.001,
            version = version + 1, last_transaction_id = v_tx, updated_at = v_now
        WHERE user_id = v_user AND id = v_position.id
        RETURNING * INTO v_result;
    ELSE
        INSERT INTO positions (user_id, symbol, side, quantity, avg_entry_price, used_margin, commission_paid, opened_at,
                               last_transaction_id, updated_at)
        VALUES (v_user, p_symbol, 'long', 0.01, 100, 0.1, 0.001, v_now, v_tx, v_now)
        RETURNING * INTO v_result;
    END IF;
    INSERT INTO orders (user_id, id, symbol, side, type, quantity, filled_quantity, status, transaction_id, idempotency_key,
                        request_fingerprint, response, executed_price, executed_at, commission, balance_delta, margin_delta,
                        realized_pnl, write_off, position_id, position_before, position_version_after, created_at, updated_at)
    VALUES (v_user, v_order_id, p_symbol, 'buy', 'market', 0.01, 0.01, 'executed', v_tx, p_key, 'pgbench',
            -- A document of the stored response's size and shape.
            jsonb_build_object('success', true, 'status', 201, 'data', jsonb_build_object(
                'order_id', v_order_id, 'transaction_id', v_tx, 'status', 'executed', 'symbol', p_symbol, 'side', 'buy',
                'type', 'market', 'quantity', 0.01, 'limit_price', NULL, 'executed_price', 100, 'executed_at', v_now,
                'commission', 0.001, 'realized_pnl', 0, 'write_off', 0, 'margin_delta', 0.1, 'position', to_jsonb(v_result),
                'account', jsonb_build_object('balance', 1, 'used_margin', 1))),
            100, v_now, 0.001, -0.001, 0.1, 0, 0, v_result.id, CASE WHEN v_has_position THEN to_jsonb(v_position) END,
            v_result.version, v_now, v_now);
    INSERT INTO fills (user_id, id, order_id, symbol, side, quantity, price, commission, realized_pnl, transaction_id, filled_at)
    VALUES (v_user, time_ordered_uuid(), v_order_id, p_symbol, 'buy', 0.01, 100, 0.001, 0, v_tx, v_now);
    INSERT INTO execution_logs (user_id, order_id, event, transaction_id, details)
    VALUES (v_user, v_order_id, 'EXECUTED', v_tx,
            jsonb_build_object('symbol', p_symbol, 'side', 'buy', 'quantity', 0.01, 'price', 100, 'commission', 0.001,
                               'realized_pnl', 0, 'position_id', v_result.id));
    PERFORM set_config('app.audit_reason', 'order_executed', true),
            set_config('app.order_id', v_order_id::text, true),
            set_config('app.transaction_id', v_tx::text, true);
    UPDATE accounts
    SET balance = balance - 0.001, used_margin = used_margin + 0.1, version = version + 1, updated_at = v_now
    WHERE user_id = v_user;
    PERFORM set_config('app.audit_reason', '', true), set_config('app.order_id', '', true), set_config('app.transaction_id', '', true);
    RETURN '{}';
END
$$;

GRANT EXECUTE ON FUNCTION bench_floor.order_rows(text, text) TO orders_api;
RESET ROLE;
