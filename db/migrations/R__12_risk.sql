-- Risk: stops on positions and the risk engine that acts on them.
--
-- A price update (set_prices, or upsert_instruments when last_price moves) queues, in its own transaction and
-- set-based, the open positions whose stop-loss or take-profit the new price crossed and one margin check per
-- symbol (enqueue_price_checks). The risk engine (process_risk_events, called in a loop by the app) then works
-- the queue in bounded batches, each one transaction: it closes crossed positions at the price that crossed
-- them, and liquidates the accounts whose margin level (equity / used margin) fell below the stop-out level,
-- largest loss first, until they are back at or above it. Each close is a system order with its fill, the
-- closed position, an execution log (STOP_LOSS, TAKE_PROFIT, LIQUIDATED) and, through the accounts trigger, an
-- audit row; a loss beyond the balance is written off as for a trader's reduce-only close. The orphan scan is the
-- backstop (risk_backstop): it queues what a price update missed.
--
-- Exactly once: a position has at most one queued close (a unique index: the first price to cross its stop
-- wins), the batch closes it only if it is still open and its stop still crossed, under the account and position
-- locks, and at most one system close stands executed per position (orders_one_system_close_per_position).
-- Lock order everywhere: accounts (ascending user_id, all of a batch in one statement), then positions.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- The problems of a position's stop levels, as one VALIDATION_ERROR naming each bad field, or NULL: both on tick;
-- a long's stop-loss below the price (when one is given) and its take-profit above, a short's the reverse; and a
-- long's stop-loss below its take-profit, a short's above.
CREATE OR REPLACE FUNCTION stop_levels_error(p_side text, p_stop_loss numeric, p_take_profit numeric, p_price numeric, p_tick_size numeric)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_long   boolean := p_side = 'long';
    v_errors jsonb := '[]'::jsonb;
BEGIN
    IF p_stop_loss IS NOT NULL AND mod(p_stop_loss, p_tick_size) <> 0 THEN
        v_errors := v_errors || jsonb_build_object('field', 'stop_loss', 'message', format('must be a multiple of the tick size %s', trim_scale(p_tick_size)));
    ELSIF p_stop_loss IS NOT NULL AND p_price IS NOT NULL AND (CASE WHEN v_long THEN p_stop_loss >= p_price ELSE p_stop_loss <= p_price END) THEN
        v_errors := v_errors || jsonb_build_object('field', 'stop_loss',
            'message', format('must be %s the price %s for a %s position', CASE WHEN v_long THEN 'below' ELSE 'above' END, trim_scale(p_price), p_side));
    END IF;
    IF p_take_profit IS NOT NULL AND mod(p_take_profit, p_tick_size) <> 0 THEN
        v_errors := v_errors || jsonb_build_object('field', 'take_profit', 'message', format('must be a multiple of the tick size %s', trim_scale(p_tick_size)));
    ELSIF p_take_profit IS NOT NULL AND p_price IS NOT NULL AND (CASE WHEN v_long THEN p_take_profit <= p_price ELSE p_take_profit >= p_price END) THEN
        v_errors := v_errors || jsonb_build_object('field', 'take_profit',
            'message', format('must be %s the price %s for a %s position', CASE WHEN v_long THEN 'above' ELSE 'below' END, trim_scale(p_price), p_side));
    END IF;
    IF jsonb_array_length(v_errors) = 0 AND p_stop_loss IS NOT NULL AND p_take_profit IS NOT NULL
       AND (CASE WHEN v_long THEN p_stop_loss >= p_take_profit ELSE p_stop_loss <= p_take_profit END) THEN
        v_errors := v_errors || jsonb_build_object('field', 'stop_loss',
            'message', format('must be %s the take_profit %s for a %s position', CASE WHEN v_long THEN 'below' ELSE 'above' END, trim_scale(p_take_profit), p_side));
    END IF;
    IF jsonb_array_length(v_errors) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN trading.error_envelope('VALIDATION_ERROR',
        (SELECT string_agg((e ->> 'field') || ': ' || (e ->> 'message'), '; ') FROM jsonb_array_elements(v_errors) e),
        jsonb_build_object('errors', v_errors));
END
$$;

-- The execution-log event of an executed order of this type.
CREATE OR REPLACE FUNCTION execution_event_of(p_type text)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE p_type WHEN 'stop_loss' THEN 'STOP_LOSS' WHEN 'take_profit' THEN 'TAKE_PROFIT' WHEN 'liquidation' THEN 'LIQUIDATED'
                       ELSE 'EXECUTED' END
$$;

-- Write-offs that do not agree with the rest of the books (the integrity check and the orphan scan's ledger
-- reconciliation): an order whose net write-off entries are not its write_off while it stands executed (nor 0
-- once rolled back), an order with a write-off whose balance_delta is not realized_pnl - commission + write_off,
-- and a write-off whose transaction did not leave the balance at 0 (a write-off is only ever the part a zero
-- balance could not pay). It reads the write_offs ledger and the orders that wrote something off
-- (orders_write_off_idx), never the whole orders table.
CREATE OR REPLACE FUNCTION write_off_mismatches(p_user_id uuid DEFAULT NULL)
    RETURNS TABLE (user_id uuid, order_id uuid, transaction_id uuid, problem text)
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    WITH owed AS (
        SELECT o.user_id, o.id, o.transaction_id, o.status, o.write_off, o.balance_delta, o.realized_pnl, o.commission
        FROM orders o
        WHERE o.write_off <> 0 AND (p_user_id IS NULL OR o.user_id = p_user_id)
    ), booked AS (
        SELECT w.user_id, w.order_id, sum(w.amount) AS amount, min(w.transaction_id::text)::uuid AS transaction_id
        FROM write_offs w
        WHERE w.order_id IS NOT NULL AND (p_user_id IS NULL OR w.user_id = p_user_id)
        GROUP BY w.user_id, w.order_id
    )
    SELECT coalesce(o.user_id, b.user_id), coalesce(o.id, b.order_id), coalesce(o.transaction_id, b.transaction_id),
           format('write-off entries sum to %s, the order (%s) says %s', trim_scale(coalesce(b.amount, 0)), coalesce(o.status, 'without a write-off'),
                  trim_scale(CASE WHEN o.status = 'executed' THEN o.write_off ELSE 0 END))
    FROM owed o
    FULL JOIN booked b ON b.user_id = o.user_id AND b.order_id = o.id
    WHERE coalesce(b.amount, 0) <> CASE WHEN o.status = 'executed' THEN o.write_off ELSE 0 END
    UNION ALL
    SELECT o.user_id, o.id, o.transaction_id,
           format('balance_delta %s is not realized_pnl %s - commission %s + write_off %s', trim_scale(o.balance_delta),
                  trim_scale(coalesce(o.realized_pnl, 0)), trim_scale(o.commission), trim_scale(o.write_off))
    FROM owed o
    WHERE o.balance_delta IS DISTINCT FROM coalesce(o.realized_pnl, 0) - o.commission + o.write_off
    UNION ALL
    SELECT w.user_id, w.order_id, w.transaction_id, format('write-off %s, but its transaction left the balance at %s', trim_scale(w.amount),
                                                           coalesce(trim_scale(b.balance_after)::text, 'no audit row'))
    FROM write_offs w
    LEFT JOIN LATERAL (SELECT a.balance_after FROM balance_audit_log a
                       WHERE a.user_id = w.user_id AND a.transaction_id = w.transaction_id ORDER BY a.id DESC LIMIT 1) b ON true
    WHERE (p_user_id IS NULL OR w.user_id = p_user_id)
      AND w.reason = 'negative_balance'
      AND b.balance_after IS DISTINCT FROM 0
      -- retention may have archived the audit row; the archive's checkpoint vouches for what it held
      AND NOT (b.balance_after IS NULL AND EXISTS (SELECT 1 FROM ledger_checkpoints c WHERE c.user_id = w.user_id AND c.created_at > w.created_at))
$$;

-- Changes the stops of one of the acting user's (app.user_id) open positions: PATCH /api/positions/{id}.
-- p_set_stop_loss / p_set_take_profit say which to change; a NULL value clears that stop. Validated against the
-- position's side and the instrument's last price, on tick (stop_levels_error). Locks account, then position,
-- and bumps the position's version, so a rollback of an earlier order cannot silently undo the change.
CREATE OR REPLACE FUNCTION set_position_stops(
        p_position_id uuid,
        p_stop_loss numeric,
        p_take_profit numeric,
        p_set_stop_loss boolean,
        p_set_take_profit boolean)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_user      uuid := app_current_user();
    v_position  record;
    v_stop_loss numeric;
    v_take_profit numeric;
    v_problem   jsonb;
    v_result    positions%ROWTYPE;
BEGIN
    IF v_user IS NULL THEN
        RETURN no_acting_user();
    ELSIF p_position_id IS NULL THEN
        RETURN validation_error('id', 'is required');
    ELSIF NOT coalesce(p_set_stop_loss, false) AND NOT coalesce(p_set_take_profit, false) THEN
        RETURN validation_error('body', 'give stop_loss, take_profit or both (null clears one)');
    END IF;
    -- The stops' own limits (> 0, below 1e12, 8 decimals) are the API's (ApiLimits); this judges them against the
    -- position and the price, and the positions CHECKs are the backstop.

    PERFORM 1 FROM accounts WHERE user_id = v_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN no_account();
    END IF;
    SELECT p.*, i.last_price, i.tick_size INTO v_position
    FROM positions p
    JOIN instruments i ON i.symbol = p.symbol
    WHERE p.user_id = v_user AND p.id = p_position_id
    FOR UPDATE OF p;
    IF NOT FOUND THEN
        RETURN error_envelope('POSITION_NOT_FOUND', 'no such position', jsonb_build_object('position_id', p_position_id));
    ELSIF v_position.status <> 'open' THEN
        RETURN error_envelope('POSITION_NOT_OPEN', 'the position is closed; only an open position has stops',
            jsonb_build_object('position_id', p_position_id, 'status', v_position.status));
    END IF;

    -- What changes is judged against today's price; the pair as it will stand must still be in order.
    v_problem := stop_levels_error(v_position.side, CASE WHEN p_set_stop_loss THEN p_stop_loss END,
                                   CASE WHEN p_set_take_profit THEN p_take_profit END, v_position.last_price, v_position.tick_size);
    v_stop_loss := CASE WHEN p_set_stop_loss THEN p_stop_loss ELSE v_position.stop_loss END;
    v_take_profit := CASE WHEN p_set_take_profit THEN p_take_profit ELSE v_position.take_profit END;
    IF v_problem IS NULL THEN
        v_problem := stop_levels_error(v_position.side, v_stop_loss, v_take_profit, NULL, v_position.tick_size);
    END IF;
    IF v_problem IS NOT NULL THEN
        RETURN v_problem;
    END IF;

    UPDATE positions
    SET stop_loss = v_stop_loss, take_profit = v_take_profit, version = version + 1, updated_at = now()
    WHERE user_id = v_user AND id = p_position_id
    RETURNING * INTO v_result;

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
        'id', v_result.id,
        'symbol', v_result.symbol,
        'side', v_result.side,
        'status', v_result.status,
        'quantity', trim_scale(v_result.quantity),
        'avg_entry_price', trim_scale(v_result.avg_entry_price),
        'stop_loss', trim_scale(v_result.stop_loss),
        'take_profit', trim_scale(v_result.take_profit),
        'version', v_result.version));
END
$$;

-- A price feed's update of many instruments' last prices in one transaction (PUT /api/admin/prices), which
-- queues the risk engine's work (enqueue_price_checks). p_prices: [{symbol, price}], each a known
-- instrument once, the price on tick. Instruments are locked in symbol order, so concurrent updates never
-- deadlock. Any invalid item refuses the whole update.
CREATE OR REPLACE FUNCTION set_prices(p_prices jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_item     record;
    v_updated  integer;
    v_symbols  text[];
BEGIN
    IF p_prices IS NULL OR jsonb_typeof(p_prices) <> 'array' OR jsonb_array_length(p_prices) = 0 THEN
        RETURN validation_error('prices', 'must be a non-empty array');
    END IF;

    FOR v_item IN
        SELECT x.symbol, x.price, (e.n - 1)::integer AS item_index, row_number() OVER (PARTITION BY x.symbol ORDER BY e.n) AS copies,
               i.tick_size, i.symbol IS NOT NULL AS known
        FROM jsonb_array_elements(p_prices) WITH ORDINALITY AS e(item, n)
        CROSS JOIN LATERAL jsonb_to_record(e.item) AS x(symbol text, price numeric)
        LEFT JOIN instruments i ON i.symbol = x.symbol
        ORDER BY e.n
    LOOP
        IF v_item.symbol IS NULL OR NOT v_item.known THEN
            RETURN validation_error(format('prices[%s].symbol', v_item.item_index), 'unknown instrument');
        ELSIF v_item.copies > 1 THEN
            RETURN validation_error(format('prices[%s].symbol', v_item.item_index), 'appears more than once');
        -- The price's own limits (> 0, below 1e12, 8 decimals) are the API's (ApiLimits); the instruments CHECK
        -- (last_price > 0) and numeric(20, 8) are the backstop. On tick is the instrument's rule, judged here.
        ELSIF mod(v_item.price, v_item.tick_size) <> 0 THEN
            RETURN validation_error(format('prices[%s].price', v_item.item_index), format('must be a multiple of the tick size %s', trim_scale(v_item.tick_size)));
        END IF;
    END LOOP;

    v_symbols := ARRAY(SELECT x.symbol FROM jsonb_to_recordset(p_prices) AS x(symbol text) ORDER BY x.symbol);
    PERFORM 1 FROM instruments WHERE symbol = ANY (v_symbols) ORDER BY symbol FOR NO KEY UPDATE;
    UPDATE instruments i
    SET last_price = x.price, last_price_at = now(), updated_at = now()
    FROM jsonb_to_recordset(p_prices) AS x(symbol text, price numeric)
    WHERE i.symbol = x.symbol;
    GET DIAGNOSTICS v_updated = ROW_COUNT;

    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object('updated', v_updated, 'queued', enqueue_price_checks(v_symbols)));
EXCEPTION
    WHEN invalid_text_representation OR numeric_value_out_of_range OR datatype_mismatch OR invalid_parameter_value THEN
        RETURN validation_error('prices', 'each price needs a symbol (a string) and a price (a number)');
END
$$;

REVOKE ALL ON FUNCTION stop_levels_error(text, numeric, numeric, numeric, numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION execution_event_of(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION write_off_mismatches(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_position_stops(uuid, numeric, numeric, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_prices(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION execution_event_of(text) TO orders_risk;
GRANT EXECUTE ON FUNCTION write_off_mismatches(uuid) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION set_position_stops(uuid, numeric, numeric, boolean, boolean) TO orders_api;
GRANT EXECUTE ON FUNCTION set_prices(jsonb) TO orders_maintenance;

RESET ROLE;

-- The risk engine: functions owned by orders_risk, whose policies (R__08) let one statement close positions of
-- many accounts. Only the SECURITY DEFINER entry points below are granted to anyone.
SET LOCAL ROLE orders_risk;
SET LOCAL search_path = trading, pg_catalog;

-- Queues the work a price of these symbols implies, at the instruments' last prices (tradable, priced ones only:
-- a halted market fills no stop): a close for each open position whose stop-loss (or else take-profit) the
-- price is at or through, and one margin check per symbol with open positions. A queued close stays (the first
-- price to cross a stop is the one it closes at); a queued margin check stands for this price too. Inserted in
-- key order, so concurrent updates that queue the same positions never deadlock.
CREATE OR REPLACE FUNCTION enqueue_price_checks(p_symbols text[])
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_stop_loss   integer;
    v_take_profit integer;
    v_checks      integer;
BEGIN
    WITH crossed AS (
        SELECT 'stop_loss' AS kind, p.symbol, p.user_id, p.id, i.last_price, 0 AS preference
        FROM instruments i
        JOIN positions p ON p.symbol = i.symbol AND p.status = 'open' AND p.side = 'long' AND p.stop_loss >= i.last_price
        WHERE i.symbol = ANY (p_symbols) AND i.tradable AND i.last_price IS NOT NULL
        UNION ALL
        SELECT 'stop_loss', p.symbol, p.user_id, p.id, i.last_price, 0
        FROM instruments i
        JOIN positions p ON p.symbol = i.symbol AND p.status = 'open' AND p.side = 'short' AND p.stop_loss <= i.last_price
        WHERE i.symbol = ANY (p_symbols) AND i.tradable AND i.last_price IS NOT NULL
        UNION ALL
        SELECT 'take_profit', p.symbol, p.user_id, p.id, i.last_price, 1
        FROM instruments i
        JOIN positions p ON p.symbol = i.symbol AND p.status = 'open' AND p.side = 'long' AND p.take_profit <= i.last_price
        WHERE i.symbol = ANY (p_symbols) AND i.tradable AND i.last_price IS NOT NULL
        UNION ALL
        SELECT 'take_profit', p.symbol, p.user_id, p.id, i.last_price, 1
        FROM instruments i
        JOIN positions p ON p.symbol = i.symbol AND p.status = 'open' AND p.side = 'short' AND p.take_profit >= i.last_price
        WHERE i.symbol = ANY (p_symbols) AND i.tradable AND i.last_price IS NOT NULL
    ), queued AS (
        INSERT INTO risk_events (kind, symbol, user_id, position_id, price)
        SELECT DISTINCT ON (c.user_id, c.id) c.kind, c.symbol, c.user_id, c.id, c.last_price
        FROM crossed c
        ORDER BY c.user_id, c.id, c.preference
        ON CONFLICT (user_id, position_id) WHERE position_id IS NOT NULL DO NOTHING
        RETURNING kind
    )
    SELECT count(*) FILTER (WHERE kind = 'stop_loss'), count(*) FILTER (WHERE kind = 'take_profit')
    INTO v_stop_loss, v_take_profit
    FROM queued;

    INSERT INTO risk_events (kind, symbol, price)
    SELECT 'price_moved', i.symbol, i.last_price
    FROM instruments i
    WHERE i.symbol = ANY (p_symbols) AND i.tradable AND i.last_price IS NOT NULL
      AND EXISTS (SELECT 1 FROM positions p WHERE p.symbol = i.symbol AND p.status = 'open')
    ORDER BY i.symbol
    -- A check already queued takes this price's place (it reads the prices of the moment it runs). One a batch is
    -- working right now is waited for: that batch deletes it when done, and DO NOTHING would have lost this
    -- price's check with it (accounts this price put below the stop-out level would then wait for the backstop).
    ON CONFLICT (symbol) WHERE kind = 'price_moved' DO UPDATE SET price = EXCLUDED.price;
    GET DIAGNOSTICS v_checks = ROW_COUNT;

    RETURN jsonb_build_object('stop_loss', v_stop_loss, 'take_profit', v_take_profit, 'margin_checks', v_checks);
END
$$;

-- Of these accounts, those whose margin level (balance + unrealized PnL at last prices, over used margin) is
-- below p_level. Set-based: the equity of all of them in one grouped join, not one query per account.
CREATE OR REPLACE FUNCTION accounts_below_margin_level(p_users uuid[], p_level numeric)
    RETURNS SETOF uuid
    LANGUAGE sql STABLE
    SET search_path = trading, pg_temp
AS $$
    SELECT a.user_id
    FROM accounts a
    LEFT JOIN (
        SELECT p.user_id,
               sum(position_unrealized_pnl(p.side, p.quantity, p.avg_entry_price, coalesce(i.last_price, p.avg_entry_price), i.contract_size)) AS unrealized
        FROM positions p
        JOIN instruments i ON i.symbol = p.symbol
        WHERE p.user_id = ANY (p_users) AND p.status = 'open'
        GROUP BY p.user_id
    ) u ON u.user_id = a.user_id
    WHERE a.user_id = ANY (p_users)
      AND a.used_margin > 0
      AND a.balance + coalesce(u.unrealized, 0) < p_level * a.used_margin
$$;

-- Closes each position of p_closes (at most one per account) at its price, if it is still open and, for a
-- stop-loss or take-profit, its stop still crossed by that price; a liquidation's caller has judged the account
-- under its lock. All closes of one call share one transaction id (one order per account, so the integrity
-- check still finds each order's own audit row) and are written set-based: orders, fills, positions, execution
-- logs, write-offs, then the accounts, one statement per reason so each audit row names its reason. Returns the
-- closes made. Not SECURITY DEFINER and granted to no one: only the risk engine's entry points call it.
CREATE OR REPLACE FUNCTION close_positions(p_closes risk_close[])
    RETURNS TABLE (closed_user_id uuid, closed_kind text, closed_write_off numeric)
    LANGUAGE plpgsql
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_tx    uuid := gen_random_uuid();
    v_now   timestamptz := now();
    v_plan  risk_close_plan[];
    v_kind  text;
BEGIN
    IF coalesce(cardinality(p_closes), 0) = 0 THEN
        RETURN;
    ELSIF (SELECT count(DISTINCT c.user_id) FROM unnest(p_closes) c) <> cardinality(p_closes) THEN
        RAISE EXCEPTION 'close_positions takes at most one close per account' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM 1 FROM accounts a WHERE a.user_id IN (SELECT c.user_id FROM unnest(p_closes) c) ORDER BY a.user_id FOR UPDATE;
    PERFORM 1 FROM positions p WHERE (p.user_id, p.id) IN (SELECT c.user_id, c.position_id FROM unnest(p_closes) c)
    ORDER BY p.user_id FOR UPDATE;

    SELECT array_agg(ROW(
               c.user_id, p.id, gen_random_uuid(), c.kind,
               coalesce(c.reason, format('%s %s crossed at %s', c.kind,
                                         trim_scale(CASE c.kind WHEN 'stop_loss' THEN p.stop_loss ELSE p.take_profit END), trim_scale(c.price))),
               p.symbol, p.strategy_id, CASE p.side WHEN 'long' THEN 'sell' ELSE 'buy' END,
               p.quantity, c.price, x.commission, x.realized, p.used_margin,
               a.balance, greatest(a.balance + x.realized - x.commission, 0), greatest(-(a.balance + x.realized - x.commission), 0),
               a.used_margin - p.used_margin, to_jsonb(p), p.version + 1)::risk_close_plan
           ORDER BY c.user_id)
    INTO v_plan
    FROM unnest(p_closes) c
    JOIN positions p ON p.user_id = c.user_id AND p.id = c.position_id AND p.status = 'open'
    JOIN instruments i ON i.symbol = p.symbol AND i.tradable
    JOIN accounts a ON a.user_id = c.user_id
    CROSS JOIN LATERAL (
        SELECT round(p.quantity * i.contract_size * c.price * i.commission_rate, 8) AS commission,
               position_unrealized_pnl(p.side, p.quantity, p.avg_entry_price, c.price, i.contract_size) AS realized
    ) x
    WHERE c.kind = 'liquidation'
       OR (c.kind = 'stop_loss' AND (CASE p.side WHEN 'long' THEN c.price <= p.stop_loss ELSE c.price >= p.stop_loss END))
       OR (c.kind = 'take_profit' AND (CASE p.side WHEN 'long' THEN c.price >= p.take_profit ELSE c.price <= p.take_profit END));
    IF v_plan IS NULL THEN
        RETURN;
    END IF;

    INSERT INTO orders (user_id, id, symbol, strategy_id, side, type, source, quantity, filled_quantity, status, transaction_id,
                        idempotency_key, request_fingerprint, response, executed_price, executed_at, commission, balance_delta,
                        margin_delta, realized_pnl, write_off, position_id, position_before, position_version_after, created_at, updated_at)
    SELECT x.user_id, x.order_id, x.symbol, x.strategy_id, x.order_side, x.kind, 'system', x.quantity, x.quantity, 'executed', v_tx,
           -- A random key: no trader can take it first.
           'system:' || x.order_id, 'system',
           envelope(true, NULL, NULL, 201, jsonb_build_object(
               'order_id', x.order_id,
               'transaction_id', v_tx,
               'status', 'executed',
               'type', x.kind,
               'source', 'system',
               'reason', x.reason,
               'symbol', x.symbol,
               'side', x.order_side,
               'quantity', trim_scale(x.quantity),
               'executed_price', trim_scale(x.price),
               'executed_at', to_char(v_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'commission', trim_scale(x.commission),
               'realized_pnl', trim_scale(x.realized),
               'write_off', trim_scale(x.write_off),
               'margin_delta', trim_scale(-x.released),
               'position', jsonb_build_object('id', x.position_id, 'status', 'closed', 'quantity', 0, 'used_margin', 0),
               'account', jsonb_build_object('balance', trim_scale(x.balance_after), 'used_margin', trim_scale(x.used_margin_after)))),
           x.price, v_now, x.commission, x.balance_after - x.balance_before, -x.released, x.realized, x.write_off,
           x.position_id, x.position_before, x.position_version_after, v_now, v_now
    FROM unnest(v_plan) x;

    INSERT INTO fills (user_id, order_id, symbol, strategy_id, side, quantity, price, commission, realized_pnl, transaction_id, filled_at)
    SELECT x.user_id, x.order_id, x.symbol, x.strategy_id, x.order_side, x.quantity, x.price, x.commission, x.realized, v_tx, v_now
    FROM unnest(v_plan) x;

    UPDATE positions p
    SET status = 'closed', quantity = 0, used_margin = 0, closed_at = v_now,
        realized_pnl = p.realized_pnl + x.realized, commission_paid = p.commission_paid + x.commission,
        version = p.version + 1, last_transaction_id = v_tx, updated_at = v_now
    FROM unnest(v_plan) x
    WHERE p.user_id = x.user_id AND p.id = x.position_id;

    INSERT INTO execution_logs (user_id, order_id, event, reason, transaction_id, details)
    SELECT x.user_id, x.order_id, execution_event_of(x.kind), x.reason, v_tx,
           jsonb_build_object('symbol', x.symbol, 'side', x.order_side, 'quantity', x.quantity, 'price', x.price,
                              'commission', x.commission, 'realized_pnl', x.realized, 'write_off', x.write_off, 'position_id', x.position_id)
    FROM unnest(v_plan) x
    ORDER BY x.user_id;

    INSERT INTO write_offs (user_id, order_id, transaction_id, reason, amount)
    SELECT x.user_id, x.order_id, v_tx, 'negative_balance', x.write_off
    FROM unnest(v_plan) x
    WHERE x.write_off > 0
    ORDER BY x.user_id;

    -- The audit trigger takes the reason from the context and each account's order from the transaction id.
    FOR v_kind IN SELECT DISTINCT x.kind FROM unnest(v_plan) x ORDER BY 1 LOOP
        PERFORM set_audit_context(v_kind, NULL, v_tx);
        UPDATE accounts a
        SET balance = x.balance_after, used_margin = x.used_margin_after, realized_pnl = a.realized_pnl + x.realized,
            version = a.version + 1, updated_at = v_now
        FROM unnest(v_plan) x
        WHERE a.user_id = x.user_id AND x.kind = v_kind;
    END LOOP;
    PERFORM set_audit_context(NULL, NULL, NULL);

    RETURN QUERY SELECT x.user_id, x.kind, x.write_off FROM unnest(v_plan) x;
END
$$;

-- Closes queued stop-loss / take-profit events, round by round (one close per account per round, oldest first), and
-- deletes them. Returns the closes made.
CREATE OR REPLACE FUNCTION close_queued(p_events risk_events[])
    RETURNS TABLE (closed_user_id uuid, closed_kind text, closed_write_off numeric)
    LANGUAGE plpgsql
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_rounds integer;
BEGIN
    SELECT max(n) INTO v_rounds FROM (SELECT count(*) AS n FROM unnest(p_events) GROUP BY user_id) x;
    FOR v_round IN 1..coalesce(v_rounds, 0) LOOP
        RETURN QUERY SELECT * FROM close_positions(ARRAY(
            SELECT ROW(e.user_id, e.position_id, e.kind, e.price, NULL)::risk_close
            FROM (SELECT e.*, row_number() OVER (PARTITION BY e.user_id ORDER BY e.id) AS n FROM unnest(p_events) e) e
            WHERE e.n = v_round
            ORDER BY e.user_id));
    END LOOP;
    DELETE FROM risk_events WHERE id IN (SELECT e.id FROM unnest(p_events) e);
END
$$;

-- Liquidates the accounts of p_users whose margin level is below p_level: first closes their queued stop-loss and
-- take-profit events (stops before stop-out: a position whose own stop a price crossed closes as that, never as a
-- liquidation, even when batches run in parallel), then locks the accounts (ascending, one statement) and
-- closes, round by round, each such account's open position with the largest loss (ties: the oldest) at its
-- instrument's last price, until every account is at or above the level or has nothing left to close (positions
-- of halted or unpriced instruments cannot be closed). p_wait: wait for a queued close another batch holds (it is
-- gone once that batch commits), so a margin check never overtakes a stop; only a caller holding no account lock
-- may wait (that batch locks accounts while holding its events). Without it, those closes are left to their batch.
-- Returns the closes made.
DROP FUNCTION IF EXISTS liquidate_below(uuid[], numeric);
CREATE OR REPLACE FUNCTION liquidate_below(p_users uuid[], p_level numeric, p_wait boolean)
    RETURNS TABLE (closed_user_id uuid, closed_kind text, closed_write_off numeric)
    LANGUAGE plpgsql
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_users  uuid[] := p_users;
    v_events risk_events[];
    v_closes risk_close[];
BEGIN
    IF coalesce(cardinality(v_users), 0) = 0 THEN
        RETURN;
    END IF;
    -- One query for both lock modes (a lock clause cannot be a parameter); planned per batch, not per order.
    EXECUTE format('SELECT array_agg(e ORDER BY e.id) FROM (SELECT * FROM risk_events WHERE kind <> %L AND attempts = 0 '
                   'AND user_id = ANY ($1) ORDER BY id FOR UPDATE %s) e',
                   'price_moved', CASE WHEN p_wait THEN '' ELSE 'SKIP LOCKED' END)
        INTO v_events USING v_users;
    RETURN QUERY SELECT * FROM close_queued(v_events);

    PERFORM 1 FROM accounts WHERE user_id = ANY (v_users) ORDER BY user_id FOR UPDATE;
    LOOP
        v_closes := ARRAY(
            SELECT ROW(w.user_id, w.id, 'liquidation', w.last_price,
                       format('stop-out: margin level below %s; closing the largest loss', trim_scale(p_level)))::risk_close
            FROM (
                SELECT DISTINCT ON (p.user_id) p.user_id, p.id, i.last_price
                FROM accounts_below_margin_level(v_users, p_level) b(user_id)
                JOIN positions p ON p.user_id = b.user_id AND p.status = 'open'
                JOIN instruments i ON i.symbol = p.symbol AND i.tradable AND i.last_price IS NOT NULL
                ORDER BY p.user_id, position_unrealized_pnl(p.side, p.quantity, p.avg_entry_price, i.last_price, i.contract_size),
                         p.opened_at, p.id
            ) w);
        EXIT WHEN cardinality(v_closes) = 0;
        RETURN QUERY SELECT * FROM close_positions(v_closes);
        v_users := ARRAY(SELECT c.user_id FROM unnest(v_closes) c);
    END LOOP;
END
$$;

-- One bounded batch of the risk engine, in the caller's transaction; the app calls it until it answers
-- done = true. It takes the oldest queued work nobody else holds (SKIP LOCKED, so batches run in parallel):
--   a margin check of a symbol: liquidates up to p_limit of its holders below the stop-out level (their queued
--     stops first, waiting for a batch that is closing one); the check stays queued while more may remain;
--   otherwise up to p_limit queued stop-loss / take-profit closes (one per account per round), then liquidates
--     the accounts they closed that the closes' commission left below the stop-out level.
-- Work whose batch failed waits (retry_at) or is retried alone (attempts), see the exception handler.
-- p_stop_out_level is Risk__StopOutLevel; the app passes it, as it does every call (it is not stored here).
CREATE OR REPLACE FUNCTION process_risk_events(p_stop_out_level numeric, p_limit integer)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
DECLARE
    v_first       risk_events%ROWTYPE;
    v_events      risk_events[];
    v_candidates  uuid[];
    v_handled     integer := 0;
    v_closed      record;
    v_made        text[] := '{}';
    v_written_off numeric := 0;
    v_closed_users uuid[] := '{}';
    v_failed      bigint[];
    v_sqlstate    text;
    v_error       text;
BEGIN
    IF p_stop_out_level IS NULL OR p_stop_out_level <= 0 OR p_stop_out_level > 100 THEN
        RETURN validation_error('stop_out_level', 'must be greater than 0 and at most 100');
    ELSIF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RETURN validation_error('limit', 'must be from 1 to 10000');
    END IF;

    BEGIN
        SELECT * INTO v_first FROM risk_events WHERE retry_at IS NULL OR retry_at <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN envelope(true, NULL, NULL, 200, jsonb_build_object('done', true, 'events', 0,
                'closed', jsonb_build_object('stop_loss', 0, 'take_profit', 0, 'liquidation', 0), 'written_off', 0));
        END IF;

        IF v_first.kind = 'price_moved' THEN
            -- Only accounts with something to close: one below the level whose positions are all halted or unpriced
            -- would be found again by every batch, and the check would never end.
            v_candidates := ARRAY(
                SELECT b.user_id
                FROM accounts_below_margin_level(ARRAY(SELECT DISTINCT p.user_id FROM positions p
                                                       WHERE p.symbol = v_first.symbol AND p.status = 'open'), p_stop_out_level) b(user_id)
                WHERE EXISTS (SELECT 1 FROM positions p JOIN instruments i ON i.symbol = p.symbol
                              WHERE p.user_id = b.user_id AND p.status = 'open' AND i.tradable AND i.last_price IS NOT NULL)
                ORDER BY b.user_id
                LIMIT p_limit);
            FOR v_closed IN SELECT * FROM liquidate_below(v_candidates, p_stop_out_level, true) LOOP
                v_made := v_made || v_closed.closed_kind;
                v_written_off := v_written_off + v_closed.closed_write_off;
            END LOOP;
            IF cardinality(v_candidates) < p_limit THEN
                DELETE FROM risk_events WHERE id = v_first.id;
                v_handled := 1;
            END IF;
        ELSE
            -- Work that failed before is retried alone; fresh work in batches.
            IF v_first.attempts > 0 THEN
                v_events := ARRAY[v_first];
            ELSE
                SELECT array_agg(e ORDER BY e.id) INTO v_events
                FROM (SELECT * FROM risk_events WHERE kind <> 'price_moved' AND attempts = 0
                      ORDER BY id LIMIT p_limit FOR UPDATE SKIP LOCKED) e;
            END IF;
            FOR v_closed IN SELECT * FROM close_queued(v_events) LOOP
                v_made := v_made || v_closed.closed_kind;
                v_written_off := v_written_off + v_closed.closed_write_off;
                v_closed_users := v_closed_users || v_closed.closed_user_id;
            END LOOP;
            v_handled := coalesce(cardinality(v_events), 0);
            -- This batch holds these accounts' locks now: it may not wait for another batch's events.
            FOR v_closed IN SELECT * FROM liquidate_below(ARRAY(SELECT DISTINCT u FROM unnest(v_closed_users) u), p_stop_out_level, false) LOOP
                v_made := v_made || v_closed.closed_kind;
                v_written_off := v_written_off + v_closed.closed_write_off;
            END LOOP;
        END IF;

        RETURN envelope(true, NULL, NULL, 200, jsonb_build_object(
            'done', false,
            'events', v_handled,
            'closed', jsonb_build_object('stop_loss', cardinality(array_positions(v_made, 'stop_loss')),
                                         'take_profit', cardinality(array_positions(v_made, 'take_profit')),
                                         'liquidation', cardinality(array_positions(v_made, 'liquidation'))),
            'written_off', trim_scale(v_written_off)));
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE IN ('40001', '40P01') THEN
            RAISE;
        END IF;
        -- The batch is undone; its work stays queued with the failure counted on it (V1_6): the events of a batch of
        -- several are retried one at a time at once, an event that failed alone waits 2^(n-1) minutes after its n-th
        -- failure (at most an hour) before it is taken again, and the rest of the queue goes on. The error is kept.
        GET STACKED DIAGNOSTICS v_sqlstate = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT;
        v_failed := ARRAY(SELECT e.id FROM unnest(v_events) e UNION SELECT v_first.id WHERE v_first.id IS NOT NULL ORDER BY 1);
        UPDATE risk_events
        SET attempts = attempts + 1,
            retry_at = CASE WHEN cardinality(v_failed) > 1 THEN NULL
                            ELSE now() + least(interval '1 minute' * power(2, least(attempts, 6)), interval '1 hour') END
        WHERE id = ANY (v_failed);
        RETURN internal_error('process_risk_events', v_sqlstate, v_error,
            CASE WHEN cardinality(v_failed) > 1
                 THEN format('a risk batch of %s events failed; they are retried one at a time', cardinality(v_failed))
                 ELSE 'a risk event failed; it is retried later and the rest of the queue goes on' END,
            jsonb_build_object('first_event', v_first.id, 'events', to_jsonb(v_failed)));
    END;
END
$$;

-- The orphan scan's backstop: queues what a price update missed, at today's prices (positions whose stops were
-- crossed while no price moved, e.g. after a rollback or a broker sync; work of a request that died), and a
-- margin check of every symbol with open positions. The scan then works the queue like a price update.
CREATE OR REPLACE FUNCTION risk_backstop()
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = trading, pg_temp
AS $$
BEGIN
    RETURN envelope(true, NULL, NULL, 200, jsonb_build_object('queued', enqueue_price_checks(ARRAY(
        SELECT DISTINCT p.symbol FROM positions p WHERE p.status = 'open' ORDER BY 1))));
END
$$;

REVOKE ALL ON FUNCTION enqueue_price_checks(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION accounts_below_margin_level(uuid[], numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION close_positions(risk_close[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION close_queued(risk_events[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION liquidate_below(uuid[], numeric, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION process_risk_events(numeric, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION risk_backstop() FROM PUBLIC;
-- upsert_instruments and set_prices (orders_owner) queue the work of the prices they set.
GRANT EXECUTE ON FUNCTION enqueue_price_checks(text[]) TO orders_owner;
GRANT EXECUTE ON FUNCTION process_risk_events(numeric, integer) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION risk_backstop() TO orders_maintenance;

RESET ROLE;
