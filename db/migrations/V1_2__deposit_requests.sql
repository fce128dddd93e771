-- Idempotency for admin deposits: the Idempotency-Key of a deposit and the response it produced, so a
-- deposit sent twice, or retried after a lost connection, moves money once (the idempotency rules for
-- orders, applied to the other way money enters). Written only by trading.deposit(), after the deposit
-- (which may create the account); kept like orders' keys, for as long as the account exists.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

CREATE TABLE deposit_requests (
    user_id              uuid NOT NULL REFERENCES accounts (user_id) ON DELETE RESTRICT,
    idempotency_key      text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_fingerprint  text NOT NULL CHECK (length(request_fingerprint) BETWEEN 1 AND 128),
    transaction_id       uuid NOT NULL,
    response             jsonb NOT NULL CHECK (jsonb_typeof(response) = 'object'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);

RESET ROLE;
