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

-- Waits for the account's turn: orders for one account queue here, in arrival order, before they take its row
-- lock (a transaction-scoped advisory lock, in the two-key space no other lock of ours uses). PostgreSQL's row lock
-- is no queue: a request that comes just as the holder commits takes the free row ahead of those already waiting,
-- so with eight clients on one account a few waited for many turns. Queued here, each waits for the ones before it:
-- pgbench on one account, alternating 10 s runs, p99 17.5-22.6 ms against 42.5-52.8 ms without, at the same rate
-- (docs/scale.md). Callers take no other lock of the account before it (no deadlock between the queue and the row).
-- Two accounts whose ids hash alike (32 bits) share one queue: their orders wait for each other's, nothing more.
CREATE OR REPLACE FUNCTION wait_for_account_turn(p_user uuid) RETURNS void
    LANGUAGE sql
AS $$
    SELECT pg_advisory_xact_lock(hashtext('trading.accounts'), hashtext(p_user::text))
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

-- An error's envelope. Its HTTP status is the code's in trading.error_codes (V1_5_2), the one table of codes and
-- statuses, which the API's ErrorCodes mirrors.
CREATE OR REPLACE FUNCTION error_envelope(p_error_code text, p_error_message text, p_data jsonb DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT trading.envelope(false, p_error_code, p_error_message,
                            (SELECT e.http_status FROM trading.error_codes e WHERE e.code = p_error_code), p_data)
$$;

-- A 400 naming the offending field, in the same shape the HTTP layer uses for its own validation.
CREATE OR REPLACE FUNCTION validation_error(p_field text, p_message text)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT trading.error_envelope('VALIDATION_ERROR', p_field || ': ' || p_message,
        jsonb_build_object('errors', jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message))))
$$;

-- The answer of every trader-facing function called without an acting user (app.user_id unset).
CREATE OR REPLACE FUNCTION no_acting_user()
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT trading.error_envelope('USER_NOT_FOUND', 'no acting user is set for this transaction')
$$;

-- The answer of every trader-facing function whose acting user has no account.
CREATE OR REPLACE FUNCTION no_account()
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT trading.error_envelope('USER_NOT_FOUND', 'the acting user has no account')
$$;

-- A price or quantity the schema can hold: at most 8 decimals (numeric(20, 8)) and below 1e12. Callers check the
-- sign themselves (their messages differ).
CREATE OR REPLACE FUNCTION within_money_range(p_value numeric)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT scale(p_value) <= 8 AND p_value < 1e12
$$;

-- What a stored function's exception handler does with an unexpected error (after re-raising serialization
-- failures and deadlocks, which the caller retries): records it in error_log and answers INTERNAL_ERROR. The
-- handler's subtransaction has already undone the function's writes; this row is written after that.
CREATE OR REPLACE FUNCTION internal_error(
        p_function text, p_sqlstate text, p_error text, p_answer text,
        p_context jsonb DEFAULT NULL, p_user_id uuid DEFAULT NULL, p_order_id uuid DEFAULT NULL,
        p_transaction_id uuid DEFAULT NULL, p_data jsonb DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE sql VOLATILE
AS $$
    INSERT INTO trading.error_log (severity, error_code, message, context, user_id, order_id, transaction_id)
    VALUES ('error', 'INTERNAL_ERROR', p_error,
            jsonb_build_object('sqlstate', p_sqlstate, 'function', p_function) || coalesce(p_context, '{}'),
            p_user_id, p_order_id, p_transaction_id);
    SELECT trading.error_envelope('INTERNAL_ERROR', p_answer, p_data);
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
                         'this Idempotency-Key was already used with a different request', p_used_for)
           END
$$;

-- A UUID whose first 48 bits are the Unix time in milliseconds (the layout of RFC 9562's version 7), the rest random.
-- Keys made of it grow at the right edge of their indexes: an order's rows then touch a few recent index pages
-- instead of a random page of each large index (fewer pages to read, and fewer full-page images in the WAL after a
-- checkpoint). Ids stay opaque: nothing reads the time back from them.
CREATE OR REPLACE FUNCTION time_ordered_uuid()
    RETURNS uuid
    LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT encode(set_byte(overlay(uuid_send(gen_random_uuid())
                                   PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                                   FROM 1 FOR 6),
                           6, (get_byte(uuid_send(gen_random_uuid()), 6) & 15) | 112), 'hex')::uuid
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

-- Unrealized PnL of a trader's open positions at the instruments' last prices (a position whose instrument has no
-- price yet is marked at its entry price), all of them or all but the one of p_except_symbol. The one query of it:
-- the accounts audit trigger (equity), the account route and execute_order's free-margin check use it.
CREATE OR REPLACE FUNCTION account_unrealized_pnl(p_user_id uuid, p_except_symbol text DEFAULT NULL)
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
        WHERE p.user_id = p_user_id AND p.status = 'open' AND p.symbol IS DISTINCT FROM p_except_symbol);
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
GRANT EXECUTE ON FUNCTION account_unrealized_pnl(uuid, text) TO orders_api, orders_maintenance;
GRANT EXECUTE ON FUNCTION execution_log_hash(bytea, uuid, bigint, uuid, text, text, text, uuid, jsonb, timestamptz) TO orders_maintenance;
GRANT EXECUTE ON FUNCTION execution_log_genesis_hash() TO orders_maintenance;

RESET ROLE;
