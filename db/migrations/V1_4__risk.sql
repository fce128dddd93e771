-- Risk: reduce-only closes that write off a loss beyond the balance, stop-loss / take-profit and margin stop-out
-- closes made by the system, and the queue through which price updates hand those closes to bounded batches.
--
-- orders_risk (no login) owns the functions that close positions of many accounts in one set-based statement:
-- the tenant policies let orders_owner see one acting user at a time, so those functions need a role of their
-- own, with policies of its own (R__08) and table grants of its own (R__09). Nothing connects as it; the app
-- reaches it only through the SECURITY DEFINER functions of R__12 that orders_maintenance may call.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orders_risk') THEN
        BEGIN
            CREATE ROLE orders_risk NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database of this cluster created it concurrently
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'orders_risk', 'MEMBER') THEN
        GRANT orders_risk TO current_user;
    END IF;
END
$$;

-- orders_risk creates its functions in this schema; like the other owning roles it grants EXECUTE explicitly.
GRANT USAGE, CREATE ON SCHEMA trading TO orders_risk;
ALTER DEFAULT PRIVILEGES FOR ROLE orders_risk REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Orders the system places: a stop-loss or take-profit that the price crossed, a liquidation of a stopped-out
-- account. source says who placed an order; the order types say why. NOT VALID, then VALIDATE: the check scans
-- existing rows without holding off writers for the scan.
ALTER TABLE orders DROP CONSTRAINT orders_type_check;
ALTER TABLE orders ADD CONSTRAINT orders_type_check
    CHECK (type IN ('market', 'limit', 'stop_loss', 'take_profit', 'liquidation')) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_type_check;
ALTER TABLE orders ADD COLUMN source text NOT NULL DEFAULT 'trader';
ALTER TABLE orders ADD CONSTRAINT orders_source_check CHECK (source IN ('trader', 'system')) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_source_check;
ALTER TABLE orders ADD CONSTRAINT orders_system_types_are_system
    CHECK ((source = 'system') = (type IN ('stop_loss', 'take_profit', 'liquidation'))) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_system_types_are_system;
-- The part of a realized loss (and commission) beyond the balance, which the balance could not pay and the house
-- wrote off: balance_delta = realized_pnl - commission + write_off. Only an order that closes without opening
-- anything can have one (an order that opens exposure must be paid for).
ALTER TABLE orders ADD COLUMN write_off numeric(24, 8) NOT NULL DEFAULT 0;
ALTER TABLE orders ADD CONSTRAINT orders_write_off_check CHECK (write_off >= 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_write_off_check;
-- The write-off reconciliation (R__12's write_off_mismatches) reads only the orders that wrote something off;
-- an order without a write-off has no entry, so it pays nothing for this index.
CREATE INDEX orders_write_off_idx ON orders (user_id, id) WHERE write_off <> 0;
-- A system close closes the whole position: at most one stands executed per position. A rollback (status
-- rolled_back) restores the position, which a later price may close again.
CREATE UNIQUE INDEX orders_one_system_close_per_position ON orders (user_id, position_id)
    WHERE source = 'system' AND status = 'executed';

ALTER TABLE execution_logs DROP CONSTRAINT execution_logs_event_check;
ALTER TABLE execution_logs ADD CONSTRAINT execution_logs_event_check
    CHECK (event IN ('SUBMITTED', 'EXECUTED', 'REJECTED', 'FAILED', 'ROLLED_BACK', 'RECOVERED', 'STOP_LOSS', 'TAKE_PROFIT', 'LIQUIDATED')) NOT VALID;
ALTER TABLE execution_logs VALIDATE CONSTRAINT execution_logs_event_check;

-- A price update finds the open positions whose stop it crossed by range scans: long stop-losses at or above the
-- price, short ones at or below it, and the reverse for take-profits. Partial: a position without the stop has
-- no entry, so orders that set none pay nothing for these indexes.
CREATE INDEX positions_open_stop_loss_idx ON positions (symbol, side, stop_loss) WHERE status = 'open' AND stop_loss IS NOT NULL;
CREATE INDEX positions_open_take_profit_idx ON positions (symbol, side, take_profit) WHERE status = 'open' AND take_profit IS NOT NULL;
-- The holders of a symbol (for the stop-out check of a price update) without reading its closed history. Still
-- the index of the positions(symbol) foreign key; status changes only when a position closes, which was never a
-- HOT update (the partial unique index reads status), so the wider key costs orders nothing.
DROP INDEX positions_symbol_idx;
CREATE INDEX positions_symbol_idx ON positions (symbol, status);

-- The negative-balance write-off: the ledger entry of money the house lost because a loss exceeded the balance.
-- An order's (order_id set) or a broker sync's (order_id NULL, the sync's transaction); a rollback of an order
-- reverses its write-off with an entry of the opposite sign. Append-only and kept forever, like execution_logs.
CREATE TABLE write_offs (
    user_id          uuid NOT NULL REFERENCES accounts (user_id) ON DELETE RESTRICT,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    order_id         uuid,
    transaction_id   uuid NOT NULL,
    reason           text NOT NULL CHECK (reason IN ('negative_balance', 'order_rolled_back')),
    amount           numeric(24, 8) NOT NULL CHECK (amount <> 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE RESTRICT,
    CONSTRAINT write_offs_sign_follows_reason CHECK ((reason = 'negative_balance') = (amount > 0)),
    CONSTRAINT write_offs_reversal_names_its_order CHECK (reason = 'negative_balance' OR order_id IS NOT NULL)
);
CREATE INDEX write_offs_order_idx ON write_offs (user_id, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX write_offs_transaction_idx ON write_offs (user_id, transaction_id);

-- Its append-only triggers are with the others in R__02 (repeatable scripts run after the versioned ones).

-- Work a price update leaves for the risk engine (R__12): an open position whose stop-loss or take-profit the
-- price crossed (with that price, at which it closes), or a symbol whose holders' margin level must be checked.
-- A work queue, not history: a batch deletes the rows it has handled; the orders it placed are the record.
-- No foreign keys, deliberately: a key on accounts would take a FOR KEY SHARE lock on every account a price
-- update touches, and each trader's order (which locks its account FOR UPDATE) would queue behind the update
-- until it commits. The batch that handles a row checks, under the account and position locks, that the
-- position is still open and its stop still crossed.
CREATE TABLE risk_events (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('stop_loss', 'take_profit', 'price_moved')),
    symbol           text NOT NULL,
    user_id          uuid,
    position_id      uuid,
    price            numeric(20, 8) NOT NULL CHECK (price > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT risk_events_position_iff_stop CHECK ((kind = 'price_moved') = (position_id IS NULL)
                                                    AND (position_id IS NULL) = (user_id IS NULL))
);
-- Exactly once: a position has at most one pending close (the first price to cross its stop wins), a symbol at
-- most one pending margin check (the check reads the prices of the moment it runs).
CREATE UNIQUE INDEX risk_events_one_per_position ON risk_events (user_id, position_id) WHERE position_id IS NOT NULL;
CREATE UNIQUE INDEX risk_events_one_check_per_symbol ON risk_events (symbol) WHERE kind = 'price_moved';

-- What a batch asks the close routine (R__12) to do: close this position at this price, for this reason; and
-- the close as the routine works it out under the locks, before it writes the rows of all closes at once.
CREATE TYPE risk_close AS (user_id uuid, position_id uuid, kind text, price numeric, reason text);
CREATE TYPE risk_close_plan AS (
    user_id uuid, position_id uuid, order_id uuid, kind text, reason text, symbol text, strategy_id uuid, order_side text,
    quantity numeric, price numeric, commission numeric, realized numeric, released numeric,
    balance_before numeric, balance_after numeric, write_off numeric, used_margin_after numeric,
    position_before jsonb, position_version_after bigint);

RESET ROLE;
