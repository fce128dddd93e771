-- Every error code the API answers with and its HTTP status, in one place: the stored functions' error envelopes
-- take their status from here (R__01's error_envelope), and the API's table of codes
-- (functions/OrderFunctions.Core/Http/ErrorCodes.cs) is a mirror that a test holds equal to this one.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

CREATE TABLE error_codes (
    code         text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z_]{0,63}$'),
    http_status  integer NOT NULL CHECK (http_status BETWEEN 400 AND 599)
);

INSERT INTO error_codes (code, http_status) VALUES
    ('VALIDATION_ERROR', 400),
    ('UNAUTHORIZED', 401),
    ('FORBIDDEN', 403),
    ('NOT_FOUND', 404),
    ('METHOD_NOT_ALLOWED', 405),
    ('PAYLOAD_TOO_LARGE', 413),
    ('UNSUPPORTED_MEDIA_TYPE', 415),
    ('USER_NOT_FOUND', 404),
    ('INSTRUMENT_NOT_FOUND', 404),
    ('INSTRUMENT_NOT_TRADABLE', 409),
    ('ACCOUNT_NOT_ACTIVE', 409),
    ('INSUFFICIENT_BALANCE', 400),
    ('INSUFFICIENT_MARGIN', 400),
    ('PRICE_NOT_MARKETABLE', 409),
    ('IDEMPOTENCY_KEY_REUSED', 422),
    ('IDEMPOTENCY_KEY_IN_USE', 409),
    ('ORDER_NOT_FOUND', 404),
    ('INVALID_ORDER_STATE', 400),
    ('ROLLBACK_CONFLICT', 409),
    ('JOB_SKIPPED', 409),
    ('SERVICE_UNAVAILABLE', 503),
    ('TIMEOUT', 504),
    ('INTERNAL_ERROR', 500),
    ('LENGTH_REQUIRED', 411),
    ('POSITION_NOT_FOUND', 404),
    ('POSITION_NOT_OPEN', 409);

-- Its grants are in R__09, with the others.

-- R__01 replaces these with new signatures: error_envelope(code, message, data), which takes the status from
-- error_codes, and account_unrealized_pnl(user, except_symbol DEFAULT NULL), the one open-positions PnL query that
-- the audit trigger, the account route and execute_order's margin check share.
DROP FUNCTION IF EXISTS error_envelope(text, text, integer, jsonb);
DROP FUNCTION IF EXISTS account_unrealized_pnl(uuid);

RESET ROLE;
