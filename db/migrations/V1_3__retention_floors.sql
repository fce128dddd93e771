-- The retention floor: how young an audit row may be and still be deleted, per table, kept by the database itself so
-- that no role the application can take deletes younger rows, whatever cutoff it passes. An owner-only setting: only
-- orders_owner (the migration login) reads or changes this table; everyone else asks trading.retention_floor().
-- SEC 17a-4(a) keeps account records 6 years; the house keeps the balance audit trail 7. error_log holds operational
-- errors, not books and records: 90 days, the app's default retention.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

CREATE TABLE retention_floors (
    table_name   text PRIMARY KEY CHECK (table_name IN ('balance_audit_log', 'error_log')),
    -- At least a day: a floor of zero would be no floor.
    min_age      interval NOT NULL CHECK (min_age >= interval '1 day'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO retention_floors (table_name, min_age) VALUES
    ('balance_audit_log', interval '7 years'),
    ('error_log', interval '90 days');

REVOKE ALL ON retention_floors FROM PUBLIC;

RESET ROLE;
