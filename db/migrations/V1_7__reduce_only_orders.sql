-- A trader who closes a position by selling what they hold can race the risk engine: when a stop-loss, take-profit
-- or stop-out closes the position first, the trader's sell then opens a short of the same size, exposure nobody
-- asked for. An order may now say reduce_only: it executes only when it shrinks or closes a position (the opposite
-- side, at most the position's quantity) and is otherwise refused as a rejected order (REDUCE_ONLY_REJECTED), so
-- the close that lost the race moves no money. orders.reduce_only records what was asked.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

ALTER TABLE orders ADD COLUMN reduce_only boolean NOT NULL DEFAULT false;

INSERT INTO error_codes (code, http_status) VALUES ('REDUCE_ONLY_REJECTED', 409);

-- R__03 creates execute_order with p_reduce_only as its last parameter (DEFAULT false, so a caller of the old
-- ten-argument form still resolves to it while an older app version drains).
DROP FUNCTION IF EXISTS execute_order(text, text, text, numeric, numeric, text, text, uuid, numeric, numeric);

RESET ROLE;
