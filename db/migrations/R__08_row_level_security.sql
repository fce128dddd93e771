-- Row-level security, FORCED so the table owner (and so every SECURITY DEFINER function) obeys it too.
--   <table>_tenant       orders_api and orders_owner see and write only the acting user's rows (app.user_id);
--   <table>_maintenance  orders_maintenance reads every tenant (timers, admin); it writes only through
--                        SECURITY DEFINER functions, which act for one user at a time;
--   <table>_archiver     orders_archiver reads and deletes archived audit and error rows and writes checkpoints;
--   <table>_verifier     orders_verifier reads every account's chains and writes the chain checkpoints;
--   <table>_risk         orders_risk, which owns the risk engine's set-based closes of many accounts at once
--                        (R__12), reads and writes every tenant's rows; nothing acts as it but those functions.
-- Any other role sees nothing (no policy = no rows).
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

DO $$
DECLARE
    t text;
    p record;
BEGIN
    FOREACH t IN ARRAY ARRAY['accounts', 'strategies', 'positions', 'orders', 'fills', 'execution_logs',
                             'balance_audit_log', 'error_log', 'ledger_checkpoints', 'deposit_requests', 'write_offs',
                             'chain_checkpoints'] LOOP
        EXECUTE format('ALTER TABLE trading.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE trading.%I FORCE ROW LEVEL SECURITY', t);
        -- Rebuild this script's policies from scratch so a policy removed here disappears from the database.
        FOR p IN SELECT policyname FROM pg_policies WHERE schemaname = 'trading' AND tablename = t LOOP
            EXECUTE format('DROP POLICY %I ON trading.%I', p.policyname, t);
        END LOOP;
        EXECUTE format($f$CREATE POLICY %I ON trading.%I FOR ALL TO orders_api, orders_owner
                          USING (user_id = trading.app_current_user())
                          WITH CHECK (user_id = trading.app_current_user())$f$, t || '_tenant', t);
        EXECUTE format('CREATE POLICY %I ON trading.%I FOR SELECT TO orders_maintenance USING (true)', t || '_maintenance', t);
    END LOOP;

    FOREACH t IN ARRAY ARRAY['balance_audit_log', 'error_log', 'ledger_checkpoints'] LOOP
        EXECUTE format('CREATE POLICY %I ON trading.%I FOR ALL TO orders_archiver USING (true) WITH CHECK (true)', t || '_archiver', t);
    END LOOP;

    FOREACH t IN ARRAY ARRAY['accounts', 'execution_logs', 'balance_audit_log', 'ledger_checkpoints'] LOOP
        EXECUTE format('CREATE POLICY %I ON trading.%I FOR SELECT TO orders_verifier USING (true)', t || '_verifier', t);
    END LOOP;
    CREATE POLICY chain_checkpoints_verifier ON trading.chain_checkpoints FOR ALL TO orders_verifier USING (true) WITH CHECK (true);

    FOREACH t IN ARRAY ARRAY['accounts', 'positions', 'orders', 'fills', 'execution_logs', 'balance_audit_log', 'write_offs', 'error_log'] LOOP
        EXECUTE format('CREATE POLICY %I ON trading.%I FOR ALL TO orders_risk USING (true) WITH CHECK (true)', t || '_risk', t);
    END LOOP;

    -- risk_events, the risk engine's queue, is no trader's: orders_risk works it, maintenance may read it.
    ALTER TABLE trading.risk_events ENABLE ROW LEVEL SECURITY;
    ALTER TABLE trading.risk_events FORCE ROW LEVEL SECURITY;
    FOR p IN SELECT policyname FROM pg_policies WHERE schemaname = 'trading' AND tablename = 'risk_events' LOOP
        EXECUTE format('DROP POLICY %I ON trading.risk_events', p.policyname);
    END LOOP;
    CREATE POLICY risk_events_risk ON trading.risk_events FOR ALL TO orders_risk USING (true) WITH CHECK (true);
    CREATE POLICY risk_events_maintenance ON trading.risk_events FOR SELECT TO orders_maintenance USING (true);
END
$$;

RESET ROLE;
