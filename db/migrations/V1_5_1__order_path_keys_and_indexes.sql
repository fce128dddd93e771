-- The order path writes what it must and no more (docs/scale.md, "Why an order costs what it costs").
--
-- 1. No foreign keys to instruments. Every order took a FOR KEY SHARE lock on its instrument row three times
--    (positions, orders, fills): a handful of rows locked by every concurrent order, which made MultiXacts (about
--    0.4 per order) and a key check per row. What those keys protected is kept by a rule on instruments instead:
--    an instrument is never deleted and its symbol never changes (R__02's instruments_keep_symbols triggers). Rows
--    name a symbol only when the SECURITY DEFINER function that writes them has just read that instrument
--    (execute_order, the risk closes, the admin position sync), and nothing else may insert into these tables.
-- 2. The indexes that only served those keys go: orders_symbol_idx and fills_symbol_idx (positions_symbol_idx
--    stays: the stop-out check of a price update reads a symbol's open positions through it).
-- 3. balance_audit_log_retention_idx (created_at, id) goes: retention walks the table in id order
--    (audit_archive_rows, the retention job's batch end, archive_audit_rows' range checks and delete), which is
--    balance_audit_log_id_idx.
--
-- What stays on the three tables an order writes, and what needs it:
--   orders
--     orders_pkey (user_id, id)                          the key fills, execution_logs, balance_audit_log and
--                                                        write_offs refer to; GET /api/orders/{id}
--     orders_user_id_idempotency_key_key                 idempotency: one order per (trader, key)
--     orders_user_id_transaction_id_key                  one order per transaction; the audit trigger finds a
--                                                        risk close's order by it; GET /api/transactions/{id}/integrity
--     orders_id_idx (id)                                 POST /api/admin/orders/{id}/rollback finds an order by id alone
--     orders_position_idx (partial: position set)        the key orders -> positions (ON DELETE RESTRICT)
--     orders_strategy_idx (partial: strategy set)        the key orders -> strategies (ON DELETE SET NULL)
--     orders_listing_idx (user_id, created_at, id)       GET /api/orders keyset pagination
--     orders_status_listing_idx (user_id, status, ...)   GET /api/orders?status= keyset pagination
--     orders_unfinished_idx (partial: pending/executing) the orphan scan job; no entry for a finished order
--     orders_write_off_idx (partial: write_off <> 0)     the write-off reconciliation; no entry without a write-off
--     orders_one_system_close_per_position (partial)     at most one executed system close per position
--   fills
--     fills_pkey (user_id, id)                           row identity
--     fills_order_idx (user_id, order_id)                the key fills -> orders (ON DELETE CASCADE); an order's fills
--                                                        in GET /api/orders/{id}
--     fills_strategy_idx (partial: strategy set)         the key fills -> strategies (ON DELETE SET NULL)
--     fills_listing_idx (user_id, filled_at, id)         GET /api/trades keyset pagination
--   balance_audit_log
--     balance_audit_log_pkey (user_id, id)               the per-account audit chain, walked in id order by the
--                                                        chain verification and the ledger checks
--     balance_audit_log_order_idx (partial: order set)   the key balance_audit_log -> orders
--     balance_audit_log_transaction_idx                  a transaction's audit rows: the integrity route, the write-off
--                                                        reconciliation
--     balance_audit_log_id_idx (id)                      the retention job's id ranges
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

ALTER TABLE positions DROP CONSTRAINT positions_symbol_fkey;
ALTER TABLE orders DROP CONSTRAINT orders_symbol_fkey;
ALTER TABLE fills DROP CONSTRAINT fills_symbol_fkey;

DROP INDEX orders_symbol_idx;
DROP INDEX fills_symbol_idx;
DROP INDEX balance_audit_log_retention_idx;

RESET ROLE;
