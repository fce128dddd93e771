-- Admin writes: instrument reference data and broker position snapshots.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Bulk upsert of instruments in one statement (INSERT ... ON CONFLICT). p_items is a JSON array of
-- objects with the instruments columns (description, commission_rate and tradable default to '', 0 and true;
-- an omitted last_price keeps the current one).
-- The CHECK constraints judge each row; any violation rejects the whole batch.
CREATE OR REPLACE FUNCTION upsert_instruments(p_items jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_inserted integer;
    v_updated  integer;
    v_dupe     text;
BEGIN
    IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' OR jsonb_array_length(p_items) = 0 THEN
        RETURN validation_error('instruments', 'must be a non-empty array');
    ELSIF jsonb_array_length(p_items) > 1000 THEN
        RETURN validation_error('instruments', 'at most 1000 per request');
    END IF;
    SELECT x.symbol INTO v_dupe
    FROM jsonb_to_recordset(p_items) AS x(symbol text)
    GROUP BY x.symbol HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RETURN validation_error('instruments', format('symbol %s appears more than once', v_dupe));
    END IF;

    WITH input AS (
        SELECT *
        FROM jsonb_to_recordset(p_items) AS x(
            symbol text, description text, contract_size numeric, margin_rate numeric, commission_rate numeric,
            min_qty numeric, qty_step numeric, tick_size numeric, last_price numeric, tradable boolean)
    ), upserted AS (
        INSERT INTO instruments AS i (symbol, description, contract_size, margin_rate, commission_rate, min_qty, qty_step,
                                      tick_size, last_price, last_price_at, tradable)
        SELECT symbol, coalesce(description, ''), contract_size, margin_rate, coalesce(commission_rate, 0), min_qty, qty_step,
               tick_size, last_price, CASE WHEN last_price IS NOT NULL THEN now() END, coalesce(tradable, true)
        FROM input
        ON CONFLICT (symbol) DO UPDATE
        SET description = excluded.description,
            contract_size = excluded.contract_size,
            margin_rate = excluded.margin_rate,
            commission_rate = excluded.commission_rate,
            min_qty = excluded.min_qty,
            qty_step = excluded.qty_step,
            tick_size = excluded.tick_size,
            last_price = coalesce(excluded.last_price, i.last_price),
            last_price_at = CASE WHEN excluded.last_price IS NOT NULL THEN now() ELSE i.last_price_at END,
            tradable = excluded.tradable,
            updated_at = now()
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
    INTO v_inserted, v_updated
    FROM upserted;

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object('inserted', v_inserted, 'updated', v_updated));
EXCEPTION
    WHEN check_violation OR not_null_violation OR invalid_text_representation OR numeric_value_out_of_range THEN
        RETURN validation_error('instruments', 'an instrument has a missing or impossible value (sizes, steps and prices > 0, 0 < margin_rate <= 1, 0 <= commission_rate < 1)');
END
$$;

-- Replaces the acting user's (app.user_id) open positions with a broker snapshot in one transaction:
-- every open position is closed, the snapshot's positions are opened with margin at their entry price,
-- and used_margin moves to the new total through update_user_balance_and_margin (the audited path).
-- p_positions: [{symbol, side: long|short, quantity, avg_entry_price, stop_loss?, take_profit?}].
-- Any invalid item rejects the whole snapshot and nothing changes.
CREATE OR REPLACE FUNCTION sync_positions(p_positions jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user     uuid := app_current_user();
    v_tx       uuid := gen_random_uuid();
    v_account  accounts%ROWTYPE;
    v_item     record;
    v_closed   integer;
    v_opened   integer := 0;
    v_total    numeric := 0;
    v_margin   numeric;
    v_result   jsonb;
    v_instrument instruments%ROWTYPE;
    v_detail   text;
BEGIN
    IF v_user IS NULL THEN
        RETURN error_envelope('USER_NOT_FOUND', 'no acting user is set for this transaction', 404);
    ELSIF p_positions IS NULL OR jsonb_typeof(p_positions) <> 'array' THEN
        RETURN validation_error('positions', 'must be an array');
    ELSIF jsonb_array_length(p_positions) > 1000 THEN
        RETURN validation_error('positions', 'at most 1000 per snapshot');
    END IF;

    SELECT * INTO v_account FROM accounts WHERE user_id = v_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN error_envelope('USER_NOT_FOUND', 'the trader has no account', 404);
    END IF;

    -- Errors name items by their place in the request, so iterate in request order.
    FOR v_item IN
        SELECT x.*, (e.n - 1)::integer AS item_index, count(*) OVER (PARTITION BY x.symbol) AS copies
        FROM jsonb_array_elements(p_positions) WITH ORDINALITY AS e(item, n)
        CROSS JOIN LATERAL jsonb_to_record(e.item) AS x(symbol text, side text, quantity numeric, avg_entry_price numeric,
                                                        stop_loss numeric, take_profit numeric)
        ORDER BY e.n
    LOOP
        IF v_item.symbol IS NULL OR NOT EXISTS (SELECT 1 FROM instruments WHERE symbol = v_item.symbol) THEN
            RETURN validation_error(format('positions[%s].symbol', v_item.item_index), 'unknown instrument');
        ELSIF v_item.copies > 1 THEN
            RETURN validation_error(format('positions[%s].symbol', v_item.item_index), 'appears more than once');
        ELSIF v_item.side IS NULL OR v_item.side NOT IN ('long', 'short') THEN
            RETURN validation_error(format('positions[%s].side', v_item.item_index), 'must be long or short');
        ELSIF v_item.quantity IS NULL OR v_item.quantity <= 0 OR scale(v_item.quantity) > 8 OR v_item.quantity >= 1e12 THEN
            RETURN validation_error(format('positions[%s].quantity', v_item.item_index), 'must be greater than 0 with at most 8 decimals');
        ELSIF v_item.avg_entry_price IS NULL OR v_item.avg_entry_price <= 0 OR scale(v_item.avg_entry_price) > 12
              OR v_item.avg_entry_price >= 1e12 THEN
            RETURN validation_error(format('positions[%s].avg_entry_price', v_item.item_index), 'must be greater than 0 with at most 12 decimals');
        ELSIF v_item.stop_loss IS NOT NULL AND (v_item.stop_loss <= 0 OR scale(v_item.stop_loss) > 8 OR v_item.stop_loss >= 1e12) THEN
            RETURN validation_error(format('positions[%s].stop_loss', v_item.item_index), 'must be greater than 0 with at most 8 decimals');
        ELSIF v_item.take_profit IS NOT NULL AND (v_item.take_profit <= 0 OR scale(v_item.take_profit) > 8 OR v_item.take_profit >= 1e12) THEN
            RETURN validation_error(format('positions[%s].take_profit', v_item.item_index), 'must be greater than 0 with at most 8 decimals');
        END IF;
    END LOOP;

    BEGIN
        UPDATE positions
        SET status = 'closed', quantity = 0, used_margin = 0, closed_at = now(),
            version = version + 1, last_transaction_id = v_tx, updated_at = now()
        WHERE user_id = v_user AND status = 'open';
        GET DIAGNOSTICS v_closed = ROW_COUNT;

        FOR v_item IN
            SELECT * FROM jsonb_to_recordset(p_positions) AS x(symbol text, side text, quantity numeric, avg_entry_price numeric,
                                                                 stop_loss numeric, take_profit numeric)
        LOOP
            SELECT * INTO v_instrument FROM instruments WHERE symbol = v_item.symbol;
            v_margin := round(v_item.quantity * v_instrument.contract_size * v_item.avg_entry_price * v_instrument.margin_rate, 8);
            INSERT INTO positions (user_id, symbol, side, quantity, avg_entry_price, used_margin, stop_loss, take_profit,
                                   last_transaction_id)
            VALUES (v_user, v_item.symbol, v_item.side, v_item.quantity, v_item.avg_entry_price, v_margin,
                    v_item.stop_loss, v_item.take_profit, v_tx);
            v_total := v_total + v_margin;
            v_opened := v_opened + 1;
        END LOOP;

        IF v_total <> v_account.used_margin THEN
            v_result := update_user_balance_and_margin(0, v_total - v_account.used_margin, 'position_sync');
            IF NOT (v_result ->> 'success')::boolean THEN
                RAISE EXCEPTION USING ERRCODE = 'OF001', MESSAGE = v_result ->> 'error_message', DETAIL = v_result::text;
            END IF;
        END IF;
    EXCEPTION WHEN SQLSTATE 'OF001' THEN
        -- Undo the closes and opens above: the snapshot is applied whole or not at all.
        GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
        RETURN v_detail::jsonb;
    END;

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
        'user_id', v_user,
        'transaction_id', v_tx,
        'closed', v_closed,
        'opened', v_opened,
        'used_margin', trim_scale(v_total)));
EXCEPTION
    WHEN invalid_text_representation OR numeric_value_out_of_range OR datatype_mismatch OR invalid_parameter_value THEN
        RETURN validation_error('positions', 'each position needs symbol, side, quantity and avg_entry_price of the right types');
END
$$;

REVOKE ALL ON FUNCTION upsert_instruments(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_positions(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION upsert_instruments(jsonb) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION sync_positions(jsonb) TO orders_maintenance;

RESET ROLE;
