-- Incremental verification: how far each account's two chains have been verified (the execution log up to seq N with
-- row_hash H; the balance audit chain up to audit row A, which left balance B and margin M), so checks start there and
-- their cost grows with new rows, not with history. Written only by the verification functions, which run as
-- orders_verifier: it reads every chain and writes nothing but these checkpoints.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

CREATE TABLE chain_checkpoints (
    user_id              uuid PRIMARY KEY REFERENCES accounts (user_id) ON DELETE RESTRICT,
    execution_log_seq    bigint NOT NULL DEFAULT 0 CHECK (execution_log_seq >= 0),
    execution_log_hash   bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex') CHECK (octet_length(execution_log_hash) = 32),
    audit_id             bigint NOT NULL DEFAULT 0 CHECK (audit_id >= 0),
    audit_balance        numeric(24, 8) NOT NULL DEFAULT 0,
    audit_margin         numeric(24, 8) NOT NULL DEFAULT 0,
    verified_at          timestamptz NOT NULL DEFAULT now()
);

RESET ROLE;

-- The role that owns the verification functions (cluster-wide, like the others: created where missing).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orders_verifier') THEN
        BEGIN
            CREATE ROLE orders_verifier NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database of this cluster created it concurrently
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'orders_verifier', 'MEMBER') THEN
        EXECUTE format('GRANT orders_verifier TO %I', current_user);
    END IF;
END
$$;

ALTER DEFAULT PRIVILEGES FOR ROLE orders_verifier REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA trading TO orders_verifier;
