-- Admin writes: instrument reference data and broker position snapshots.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Bulk upsert of instruments in one statement (INSERT ... ON CONFLICT). p_items is a JSON array of
-- objects with the instruments columns (description, commission_rate and tradable default to '', 0 and true;
-- an omitted last_price keeps the current one).
-- The CHECK constraints judge each row; any violation rejects the whole batch.
-- A price that moves here acts like one from PUT /api/admin/prices: the crossed stops and the holders' margin
-- checks are queued for the risk engine (enqueue_price_checks, R__12) in the same transaction. Rows are
-- written in symbol order, as set_prices locks them, so two concurrent updates never deadlock.
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
    v_queued   jsonb;
BEGIN
    IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' OR jsonb_array_length(p_items) = 0 THEN
        RETURN validation_error('instruments', 'must be a non-empty array');
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
        ORDER BY symbol
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
    v_queued := enqueue_price_checks(ARRAY(SELECT x.symbol FROM jsonb_to_recordset(p_items) AS x(symbol text)));

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object('inserted', v_inserted, 'updated', v_updated, 'queued', v_queued));
EXCEPTION
    WHEN check_violation OR not_null_violation OR invalid_text_representation OR numeric_value_out_of_range THEN
        RETURN validation_error('instruments', 'an instrument has a missing or impossible value (sizes, steps and prices > 0, 0 < margin_rate <= 1, 0 <= commission_rate < 1)');
END
$$;

-- The one-argument sync of before closing prices were required.
DROP FUNCTION IF EXISTS sync_positions(jsonb);

-- Replaces the acting user's (app.user_id) open positions with a broker snapshot in one transaction, booking
-- every gain and loss the change implies. p_positions: [{symbol, side: long|short, quantity, avg_entry_price,
-- stop_loss?, take_profit?}]; p_closing_prices: [{symbol, price}], the broker's price of each symbol whose open
-- position the snapshot drops or changes (side, quantity or avg_entry_price): without it the sync is refused
-- (VALIDATION_ERROR naming closing_prices), since no gain or loss may leave the books unrecorded.
--   kept     an open position the snapshot repeats exactly stays as it is (its stops become the snapshot's);
--   closed   an open position the snapshot drops or changes is closed, booking realized PnL at its closing
--            price P: its unrealized PnL at P, less the unrealized PnL at P of the position replacing it (none
--            when dropped). So the trader's equity at P is what it was: a dropped position books all its PnL,
--            a reduced one the PnL of the part that went, a re-priced one the difference of entries;
--   opened   every snapshot position not kept opens with margin at its entry price.
-- The account then moves in one audited update (the accounts trigger writes the row; its reason names the
-- booked PnL): balance += realized (a loss beyond the balance takes it to 0 and the rest is written off, with
-- a write_offs entry of this transaction), realized_pnl += realized, used_margin = the open positions' margin.
-- No commission is charged: the broker's is not ours to know. Any invalid item refuses the whole snapshot and
-- nothing changes.
CREATE OR REPLACE FUNCTION sync_positions(p_positions jsonb, p_closing_prices jsonb)
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
    v_item       record;
    v_closed     integer := 0;
    v_kept       integer := 0;
    v_opened     integer := 0;
    v_realized   numeric := 0;
    v_balance    numeric;
    v_write_off  numeric := 0;
    v_used       numeric;
    v_missing    text;
    v_problem    jsonb;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_positions IS NULL OR jsonb_typeof(p_positions) <> 'array' THEN
        RETURN validation_error('positions', 'must be an array');
    ELSIF p_closing_prices IS NULL OR jsonb_typeof(p_closing_prices) <> 'array' THEN
        RETURN validation_error('closing_prices', 'must be an array');
    END IF;

    SELECT * INTO v_account FROM accounts WHERE user_id = v_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN error_envelope('USER_NOT_FOUND', 'the trader has no account');
    END IF;

    -- Errors name items by their place in the request, so iterate in request order.
    FOR v_item IN
        SELECT x.*, (e.n - 1)::integer AS item_index, count(*) OVER (PARTITION BY x.symbol) AS copies, i.tick_size,
               i.symbol IS NOT NULL AS known
        FROM jsonb_array_elements(p_positions) WITH ORDINALITY AS e(item, n)
        CROSS JOIN LATERAL jsonb_to_record(e.item) AS x(symbol text, side text, quantity numeric, avg_entry_price numeric,
                                                        stop_loss numeric, take_profit numeric)
        LEFT JOIN instruments i ON i.symbol = x.symbol
        ORDER BY e.n
    LOOP
        IF v_item.symbol IS NULL OR NOT v_item.known THEN
            RETURN validation_error(format('positions[%s].symbol', v_item.item_index), 'unknown instrument');
        ELSIF v_item.copies > 1 THEN
            RETURN validation_error(format('positions[%s].symbol', v_item.item_index), 'appears more than once');
        ELSIF v_item.side IS NULL OR v_item.side NOT IN ('long', 'short') THEN
            RETURN validation_error(format('positions[%s].side', v_item.item_index), 'must be long or short');
        END IF;
        -- The numbers' own limits (> 0, below 1e12, decimals) are the API's (ApiLimits, checked before this call);
        -- the positions columns' types and CHECKs are the backstop.
        -- The broker's stops may sit anywhere relative to today's price (a trailing stop in profit), but a long's
        -- stop-loss is below its take-profit, a short's above, and both are on tick.
        v_problem := stop_levels_error(v_item.side, v_item.stop_loss, v_item.take_profit, NULL, v_item.tick_size);
        IF v_problem IS NOT NULL THEN
            RETURN validation_error(format('positions[%s].%s', v_item.item_index, v_problem -> 'data' -> 'errors' -> 0 ->> 'field'),
                                    v_problem -> 'data' -> 'errors' -> 0 ->> 'message');
        END IF;
    END LOOP;

    FOR v_item IN
        SELECT x.*, (e.n - 1)::integer AS item_index, count(*) OVER (PARTITION BY x.symbol) AS copies,
               EXISTS (SELECT 1 FROM instruments i WHERE i.symbol = x.symbol) AS known
        FROM jsonb_array_elements(p_closing_prices) WITH ORDINALITY AS e(item, n)
        CROSS JOIN LATERAL jsonb_to_record(e.item) AS x(symbol text, price numeric)
        ORDER BY e.n
    LOOP
        IF v_item.symbol IS NULL OR NOT v_item.known THEN
            RETURN validation_error(format('closing_prices[%s].symbol', v_item.item_index), 'unknown instrument');
        ELSIF v_item.copies > 1 THEN
            RETURN validation_error(format('closing_prices[%s].symbol', v_item.item_index), 'appears more than once');
        -- The one API limit repeated here: no column stores a closing price, so no CHECK would stop a price that
        -- books an impossible PnL.
        ELSIF v_item.price IS NULL OR v_item.price <= 0 OR NOT within_money_range(v_item.price) THEN
            RETURN validation_error(format('closing_prices[%s].price', v_item.item_index), 'must be greater than 0 with at most 8 decimals, below 1e12');
        END IF;
    END LOOP;

    -- Account, then positions: the lock order of execute_order.
    PERFORM 1 FROM positions WHERE user_id = v_user AND status = 'open' ORDER BY id FOR UPDATE;

    SELECT string_agg(p.symbol, ', ' ORDER BY p.symbol) INTO v_missing
    FROM positions p
    LEFT JOIN jsonb_to_recordset(p_positions) AS s(symbol text, side text, quantity numeric, avg_entry_price numeric) ON s.symbol = p.symbol
    LEFT JOIN jsonb_to_recordset(p_closing_prices) AS c(symbol text, price numeric) ON c.symbol = p.symbol
    WHERE p.user_id = v_user AND p.status = 'open'
      AND (s.symbol IS NULL OR (s.side, s.quantity, s.avg_entry_price) IS DISTINCT FROM (p.side, p.quantity, p.avg_entry_price))
      AND c.price IS NULL;
    IF v_missing IS NOT NULL THEN
        RETURN validation_error('closing_prices',
            format('the snapshot drops or changes the open position in %s: give its closing price, at which its PnL is booked', v_missing));
    END IF;

    BEGIN
        -- Close what the snapshot drops or changes, booking its PnL at the closing price.
        WITH changed AS (
            SELECT p.user_id, p.id,
                   position_unrealized_pnl(p.side, p.quantity, p.avg_entry_price, c.price, i.contract_size)
                   - CASE WHEN s.symbol IS NULL THEN 0
                          ELSE position_unrealized_pnl(s.side, s.quantity, s.avg_entry_price, c.price, i.contract_size) END AS realized
            FROM positions p
            JOIN instruments i ON i.symbol = p.symbol
            JOIN jsonb_to_recordset(p_closing_prices) AS c(symbol text, price numeric) ON c.symbol = p.symbol
            LEFT JOIN jsonb_to_recordset(p_positions) AS s(symbol text, side text, quantity numeric, avg_entry_price numeric) ON s.symbol = p.symbol
            WHERE p.user_id = v_user AND p.status = 'open'
              AND (s.symbol IS NULL OR (s.side, s.quantity, s.avg_entry_price) IS DISTINCT FROM (p.side, p.quantity, p.avg_entry_price))
        ), closed AS (
            UPDATE positions p
            SET status = 'closed', quantity = 0, used_margin = 0, closed_at = v_now, realized_pnl = p.realized_pnl + changed.realized,
                version = p.version + 1, last_transaction_id = v_tx, updated_at = v_now
            FROM changed
            WHERE p.user_id = changed.user_id AND p.id = changed.id
            RETURNING changed.realized
        )
        SELECT count(*), coalesce(sum(realized), 0) INTO v_closed, v_realized FROM closed;

        -- What is still open the snapshot keeps exactly: it stays, with the snapshot's stops.
        UPDATE positions p
        SET stop_loss = s.stop_loss, take_profit = s.take_profit, version = p.version + 1, last_transaction_id = v_tx, updated_at = v_now
        FROM jsonb_to_recordset(p_positions) AS s(symbol text, side text, quantity numeric, avg_entry_price numeric,
                                                  stop_loss numeric, take_profit numeric)
        WHERE p.user_id = v_user AND p.status = 'open' AND p.symbol = s.symbol
          AND (p.stop_loss, p.take_profit) IS DISTINCT FROM (s.stop_loss, s.take_profit);
        SELECT count(*) INTO v_kept FROM positions WHERE user_id = v_user AND status = 'open';

        -- Everything else in the snapshot opens, with margin at its entry price.
        INSERT INTO positions (user_id, symbol, side, quantity, avg_entry_price, used_margin, stop_loss, take_profit,
                               opened_at, last_transaction_id, updated_at)
        SELECT v_user, s.symbol, s.side, s.quantity, s.avg_entry_price,
               round(s.quantity * i.contract_size * s.avg_entry_price * i.margin_rate, 8), s.stop_loss, s.take_profit,
               v_now, v_tx, v_now
        FROM jsonb_to_recordset(p_positions) AS s(symbol text, side text, quantity numeric, avg_entry_price numeric,
                                                  stop_loss numeric, take_profit numeric)
        JOIN instruments i ON i.symbol = s.symbol
        WHERE NOT EXISTS (SELECT 1 FROM positions p WHERE p.user_id = v_user AND p.status = 'open' AND p.symbol = s.symbol)
        ORDER BY s.symbol;
        GET DIAGNOSTICS v_opened = ROW_COUNT;

        SELECT coalesce(sum(used_margin), 0) INTO v_used FROM positions WHERE user_id = v_user AND status = 'open';
        v_balance := v_account.balance + v_realized;
        IF v_balance < 0 THEN
            v_write_off := -v_balance;
            v_balance := 0;
        END IF;

        IF v_balance <> v_account.balance OR v_used <> v_account.used_margin THEN
            PERFORM set_audit_context(format('position_sync: realized %s on %s closed or changed position(s)%s', trim_scale(v_realized), v_closed,
                                             CASE WHEN v_write_off > 0 THEN format(', %s written off', trim_scale(v_write_off)) ELSE '' END),
                                      NULL, v_tx);
            UPDATE accounts
            SET balance = v_balance, used_margin = v_used, realized_pnl = realized_pnl + v_realized,
                version = version + 1, updated_at = v_now
            WHERE user_id = v_user;
            PERFORM set_audit_context(NULL, NULL, NULL);
        END IF;
        IF v_write_off > 0 THEN
            INSERT INTO write_offs (user_id, order_id, transaction_id, reason, amount)
            VALUES (v_user, NULL, v_tx, 'negative_balance', v_write_off);
        END IF;
    EXCEPTION WHEN check_violation OR numeric_value_out_of_range THEN
        -- Nothing above is kept: the snapshot is applied whole or not at all.
        RETURN validation_error('positions', 'the snapshot holds a position whose margin or PnL is out of range');
    END;

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
        'user_id', v_user,
        'transaction_id', v_tx,
        'closed', v_closed,
        'kept', v_kept,
        'opened', v_opened,
        'realized_pnl', trim_scale(v_realized),
        'write_off', trim_scale(v_write_off),
        'balance', trim_scale(v_balance),
        'used_margin', trim_scale(v_used)));
EXCEPTION
    WHEN invalid_text_representation OR numeric_value_out_of_range OR datatype_mismatch OR invalid_parameter_value THEN
        RETURN validation_error('positions', 'each position needs symbol, side, quantity and avg_entry_price of the right types');
END
$$;

REVOKE ALL ON FUNCTION upsert_instruments(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION sync_positions(jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION upsert_instruments(jsonb) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION sync_positions(jsonb, jsonb) TO orders_maintenance;

RESET ROLE;
