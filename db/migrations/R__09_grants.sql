-- Table privileges, least first: the API reads its own rows and writes only through execute_order;
-- maintenance reads everything and writes only its run records; the archiver deletes archived rows.
-- Function grants sit next to each function.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

REVOKE ALL ON ALL TABLES IN SCHEMA trading FROM PUBLIC, orders_api, orders_maintenance, orders_archiver, orders_risk, orders_verifier;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA trading FROM PUBLIC, orders_api, orders_maintenance, orders_archiver, orders_risk, orders_verifier;

GRANT SELECT ON accounts, strategies, instruments, positions, orders, fills, write_offs TO orders_api;
-- Every role whose functions answer with an error envelope reads the status of its code there.
GRANT SELECT ON error_codes TO orders_api, orders_archiver, orders_risk;

GRANT SELECT ON ALL TABLES IN SCHEMA trading TO orders_maintenance;
GRANT INSERT, UPDATE ON maintenance_runs TO orders_maintenance;

GRANT SELECT, DELETE ON balance_audit_log, error_log TO orders_archiver;
GRANT SELECT, INSERT ON audit_archives, ledger_checkpoints TO orders_archiver;
GRANT SELECT ON accounts, maintenance_runs TO orders_archiver;
GRANT EXECUTE ON FUNCTION envelope(boolean, text, text, integer, jsonb),
                          error_envelope(text, text, jsonb),
                          validation_error(text, text)
    TO orders_archiver;

-- The risk engine (R__12): it closes positions (and so writes orders, fills, execution logs, write-offs and,
-- through the accounts trigger, audit rows), works its queue, and runs the helpers and triggers those need.
GRANT SELECT, UPDATE ON accounts, positions TO orders_risk;
GRANT SELECT ON instruments TO orders_risk;
GRANT SELECT, INSERT ON orders, fills, execution_logs, balance_audit_log, write_offs, error_log TO orders_risk;
-- (FOR UPDATE, with which a batch claims its work, needs UPDATE.)
GRANT SELECT, INSERT, UPDATE, DELETE ON risk_events TO orders_risk;
GRANT EXECUTE ON FUNCTION envelope(boolean, text, text, integer, jsonb),
                          error_envelope(text, text, jsonb),
                          validation_error(text, text),
                          no_acting_user(),
                          no_account(),
                          within_money_range(numeric),
                          internal_error(text, text, text, text, jsonb, uuid, uuid, uuid, jsonb),
                          position_unrealized_pnl(text, numeric, numeric, numeric, numeric),
                          account_unrealized_pnl(uuid, text),
                          execution_log_hash(bytea, uuid, bigint, uuid, text, text, text, uuid, jsonb, timestamptz),
                          execution_log_genesis_hash(),
                          set_audit_context(text, uuid, uuid)
    TO orders_risk;

-- The verifier reads the chains and writes only the checkpoints of how far they are verified.
GRANT SELECT ON accounts, execution_logs, balance_audit_log, ledger_checkpoints TO orders_verifier;
GRANT SELECT, INSERT, UPDATE ON chain_checkpoints TO orders_verifier;

RESET ROLE;

-- Grants the runtime roles to the login the application connects as (`OrderFunctions.Db grant-app`).
-- The login must not inherit them: it has no privileges until each transaction picks one with
-- SET LOCAL ROLE, so a forgotten role fails closed. Run by the migrating (admin) login.
CREATE OR REPLACE FUNCTION trading.grant_application_roles(p_login text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login AND rolcanlogin) THEN
        RAISE EXCEPTION 'no login role named %', p_login USING ERRCODE = 'undefined_object';
    END IF;
    IF current_setting('server_version_num')::int >= 160000 THEN
        EXECUTE format('GRANT orders_api, orders_maintenance TO %I WITH INHERIT FALSE', p_login);
    ELSE
        EXECUTE format('ALTER ROLE %I NOINHERIT', p_login);
        EXECUTE format('GRANT orders_api, orders_maintenance TO %I', p_login);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION trading.grant_application_roles(text) FROM PUBLIC;
