-- Shared helpers: the acting user, the response envelope, money arithmetic, the execution-log hash.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Helpers carry no SET clause: a SQL function with one is never inlined and is planned on every call, and a
-- PL/pgSQL one switches search_path on every call. They name trading's objects explicitly instead (pg_catalog
-- is always searched first). Only SECURITY DEFINER functions pin search_path, as they must.

-- The trader a transaction acts for. Set by the caller with set_config('app.user_id', ..., true) at the
-- start of every transaction; never taken from a function parameter a caller could forge.
CREATE OR REPLACE FUNCTION app_current_user() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT nullif(current_setting('app.user_id', true), '')::uuid
$$;

-- The one response shape of every stored function (docs/architecture.md, "The envelope").
CREATE OR REPLACE FUNCTION envelope(p_success boolean, p_error_code text, p_error_message text, p_status integer, p_data jsonb)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
        'success', p_success,
        'error_code', p_error_code,
        'error_message', p_error_message,
        'status', p_status,
        -- now(), the transaction's start, is stable: the function stays inlinable (clock_timestamp would not).
        'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', coalesce(p_data, '{}'::jsonb))
$$;

CREATE OR REPLACE FUNCTION error_envelope(p_error_code text, p_error_message text, p_status integer, p_data jsonb DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT trading.envelope(false, p_error_code, p_error_message, p_status, p_data)
$$;

-- A 400 naming the offending field, in the same shape the HTTP layer uses for its own validation.
CREATE OR REPLACE FUNCTION validation_error(p_field text, p_message text)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT trading.envelope(false, 'VALIDATION_ERROR', p_field || ': ' || p_message, 400,
        jsonb_build_object('errors', jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message))))
$$;

-- The answer to a request whose Idempotency-Key already holds a stored response (orders, deposits): that
-- response marked "replayed" when the request's fingerprint matches, else IDEMPOTENCY_KEY_REUSED naming what
-- the key was used for (p_used_for).
CREATE OR REPLACE FUNCTION idempotent_replay(p_stored_fingerprint text, p_fingerprint text, p_stored_response jsonb, p_used_for jsonb)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_stored_fingerprint = p_fingerprint
                THEN p_stored_response || jsonb_build_object('replayed', true)
                ELSE trading.error_envelope('IDEMPOTENCY_KEY_REUSED',
                         'this Idempotency-Key was already used with a different request', 422, p_used_for)
           END
$$;

-- Money is rounded to 8 decimals, half away from zero (numeric round); the C# oracle does the same.
-- Unrealized PnL of a position marked at a price, rounded per position.
CREATE OR REPLACE FUNCTION position_unrealized_pnl(p_side text, p_quantity numeric, p_avg_entry_price numeric, p_mark_price numeric, p_contract_size numeric)
    RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT round((p_mark_price - p_avg_entry_price) * p_quantity * p_contract_size
                 * CASE p_side WHEN 'long' THEN 1 ELSE -1 END, 8)
$$;

-- Unrealized PnL of all a trader's open positions at the instruments' last prices
-- (a position whose instrument has no price yet is marked at its entry price).
CREATE OR REPLACE FUNCTION account_unrealized_pnl(p_user_id uuid)
    RETURNS numeric
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    -- PL/pgSQL keeps this plan for the session; a SQL function that cannot be inlined is planned per call.
    RETURN (
        SELECT coalesce(sum(trading.position_unrealized_pnl(p.side, p.quantity, p.avg_entry_price,
                                                            coalesce(i.last_price, p.avg_entry_price), i.contract_size)), 0)
        FROM trading.positions p
        JOIN trading.instruments i ON i.symbol = p.symbol
        WHERE p.user_id = p_user_id AND p.status = 'open');
END
$$;

-- sha256(prev_hash || canonical row). STABLE, not IMMUTABLE: concat_ws and convert_to are stable, and a
-- function declared stricter than its body is never inlined. The canonical row joins the fields with the unit separator;
-- the timestamp is microseconds since the epoch so the text never depends on session settings.
CREATE OR REPLACE FUNCTION execution_log_hash(
        p_prev_hash bytea, p_user_id uuid, p_seq bigint, p_order_id uuid, p_event text, p_reason text,
        p_error_code text, p_transaction_id uuid, p_details jsonb, p_created_at timestamptz)
    RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT sha256(p_prev_hash || convert_to(concat_ws(chr(31),
        p_user_id::text, p_seq::text, p_order_id::text, p_event, coalesce(p_reason, ''), coalesce(p_error_code, ''),
        p_transaction_id::text, p_details::text, (extract(epoch FROM p_created_at) * 1000000)::bigint::text), 'UTF8'))
$$;

-- The hash a chain starts from.
CREATE OR REPLACE FUNCTION execution_log_genesis_hash()
    RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT decode(repeat('00', 32), 'hex')
$$;

-- Transaction-local context the accounts audit trigger reads: why money moved, for which order and transaction.
CREATE OR REPLACE FUNCTION set_audit_context(p_reason text, p_order_id uuid, p_transaction_id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('app.audit_reason', coalesce(p_reason, ''), true),
            set_config('app.order_id', coalesce(p_order_id::text, ''), true),
            set_config('app.transaction_id', coalesce(p_transaction_id::text, ''), true);
END
$$;

GRANT EXECUTE ON FUNCTION app_current_user() TO orders_api, orders_maintenance, orders_archiver;
GRANT EXECUTE ON FUNCTION position_unrealized_pnl(text, numeric, numeric, numeric, numeric) TO orders_api, orders_maintenance;
GRANT EXECUTE ON FUNCTION account_unrealized_pnl(uuid) TO orders_api, orders_maintenance;
GRANT EXECUTE ON FUNCTION execution_log_hash(bytea, uuid, bigint, uuid, text, text, text, uuid, jsonb, timestamptz) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION execution_log_genesis_hash() TO orders_maintenance;

RESET ROLE;
