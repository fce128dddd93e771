-- The whole data model (docs/architecture.md). Every object is owned by orders_owner.
-- Tenant tables carry user_id and every key/FK between them includes it, so the schema can later be
-- distributed by user_id (Citus) with each order transaction on one shard.
-- FK actions: RESTRICT for money and history, CASCADE for pure children, SET NULL (column) for optional tags.
SET LOCAL ROLE orders_owner;
SET LOCAL search_path = trading, pg_catalog;

-- Reference data (not tenant-scoped).
CREATE TABLE instruments (
    symbol           text PRIMARY KEY CHECK (symbol ~ '^[A-Z0-9][A-Z0-9._/-]{0,31}$'),
    description      text NOT NULL DEFAULT '',
    contract_size    numeric(20, 8) NOT NULL CHECK (contract_size > 0),
    margin_rate      numeric(9, 8)  NOT NULL CHECK (margin_rate > 0 AND margin_rate <= 1),
    commission_rate  numeric(9, 8)  NOT NULL DEFAULT 0 CHECK (commission_rate >= 0 AND commission_rate < 1),
    min_qty          numeric(20, 8) NOT NULL CHECK (min_qty > 0),
    qty_step         numeric(20, 8) NOT NULL CHECK (qty_step > 0),
    tick_size        numeric(20, 8) NOT NULL CHECK (tick_size > 0),
    last_price       numeric(20, 8) CHECK (last_price > 0),
    last_price_at    timestamptz,
    tradable         boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((last_price IS NULL) = (last_price_at IS NULL))
);

-- One row per trader; the root of every tenant's data.
CREATE TABLE accounts (
    user_id          uuid PRIMARY KEY,
    balance          numeric(24, 8) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    used_margin      numeric(24, 8) NOT NULL DEFAULT 0 CHECK (used_margin >= 0),
    -- Cumulative realized PnL; the audit trigger uses its change to report equity before a close exactly.
    realized_pnl     numeric(24, 8) NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    version          bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
)
-- Every order updates its account row: room on the page keeps those updates HOT (no index writes).
WITH (fillfactor = 80);

CREATE TABLE strategies (
    user_id          uuid NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, name)
);

CREATE TABLE positions (
    user_id              uuid NOT NULL REFERENCES accounts (user_id) ON DELETE RESTRICT,
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    symbol               text NOT NULL REFERENCES instruments (symbol) ON DELETE RESTRICT,
    strategy_id          uuid,
    side                 text NOT NULL CHECK (side IN ('long', 'short')),
    quantity             numeric(20, 8) NOT NULL CHECK (quantity >= 0),
    avg_entry_price      numeric(28, 12) NOT NULL CHECK (avg_entry_price > 0),
    used_margin          numeric(24, 8) NOT NULL DEFAULT 0 CHECK (used_margin >= 0),
    stop_loss            numeric(20, 8) CHECK (stop_loss > 0),
    take_profit          numeric(20, 8) CHECK (take_profit > 0),
    commission_paid      numeric(24, 8) NOT NULL DEFAULT 0 CHECK (commission_paid >= 0),
    realized_pnl         numeric(24, 8) NOT NULL DEFAULT 0,
    status               text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    version              bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    opened_at            timestamptz NOT NULL DEFAULT now(),
    closed_at            timestamptz,
    last_transaction_id  uuid,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, strategy_id) REFERENCES strategies (user_id, id) ON DELETE SET NULL (strategy_id),
    CONSTRAINT positions_open_has_quantity CHECK (status = 'closed' OR quantity > 0),
    CONSTRAINT positions_closed_releases_margin CHECK (status = 'open' OR (quantity = 0 AND used_margin = 0)),
    CONSTRAINT positions_closed_at_iff_closed CHECK ((status = 'closed') = (closed_at IS NOT NULL))
)
-- Most orders update their position in place: room on the page keeps those updates HOT.
WITH (fillfactor = 80);
-- At most one open position per trader and symbol (netting); also serves "open positions of a trader".
CREATE UNIQUE INDEX positions_one_open_per_symbol ON positions (user_id, symbol) WHERE status = 'open';
CREATE INDEX positions_symbol_idx ON positions (symbol);
CREATE INDEX positions_strategy_idx ON positions (user_id, strategy_id) WHERE strategy_id IS NOT NULL;
-- GET /api/positions?status: keyset on (opened_at, id) per trader.
CREATE INDEX positions_listing_idx ON positions (user_id, status, opened_at DESC, id DESC);

CREATE TABLE orders (
    user_id                  uuid NOT NULL REFERENCES accounts (user_id) ON DELETE RESTRICT,
    id                       uuid NOT NULL DEFAULT gen_random_uuid(),
    symbol                   text NOT NULL REFERENCES instruments (symbol) ON DELETE RESTRICT,
    strategy_id              uuid,
    side                     text NOT NULL CHECK (side IN ('buy', 'sell')),
    type                     text NOT NULL CHECK (type IN ('market', 'limit')),
    quantity                 numeric(20, 8) NOT NULL CHECK (quantity > 0),
    filled_quantity          numeric(20, 8) NOT NULL DEFAULT 0,
    limit_price              numeric(20, 8) CHECK (limit_price > 0),
    stop_loss                numeric(20, 8) CHECK (stop_loss > 0),
    take_profit              numeric(20, 8) CHECK (take_profit > 0),
    status                   text NOT NULL CHECK (status IN ('pending', 'executing', 'executed', 'failed', 'rejected', 'rolled_back')),
    transaction_id           uuid NOT NULL,
    idempotency_key          text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_fingerprint      text NOT NULL CHECK (length(request_fingerprint) BETWEEN 1 AND 128),
    -- The envelope returned to the first request: replayed verbatim for the same key and payload.
    response                 jsonb,
    executed_price           numeric(20, 8) CHECK (executed_price > 0),
    executed_at              timestamptz,
    commission               numeric(24, 8) CHECK (commission >= 0),
    balance_delta            numeric(24, 8),
    margin_delta             numeric(24, 8),
    realized_pnl             numeric(24, 8),
    position_id              uuid,
    -- For exact compensation: the position as it was before this order (NULL if the order opened it)
    -- and the version this order left it at (a rollback requires it unchanged since).
    position_before          jsonb,
    position_version_after   bigint,
    failure_reason           text,
    error_code               text,
    rollback_transaction_id  uuid,
    rolled_back_at           timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, idempotency_key),
    UNIQUE (user_id, transaction_id),
    FOREIGN KEY (user_id, strategy_id) REFERENCES strategies (user_id, id) ON DELETE SET NULL (strategy_id),
    FOREIGN KEY (user_id, position_id) REFERENCES positions (user_id, id) ON DELETE RESTRICT,
    CONSTRAINT orders_filled_within_quantity CHECK (filled_quantity >= 0 AND filled_quantity <= quantity),
    CONSTRAINT orders_limit_price_iff_limit CHECK ((type = 'limit') = (limit_price IS NOT NULL)),
    CONSTRAINT orders_executed_is_complete CHECK (
        status NOT IN ('executed', 'rolled_back')
        OR (executed_price IS NOT NULL AND executed_at IS NOT NULL AND filled_quantity = quantity
            AND commission IS NOT NULL AND balance_delta IS NOT NULL AND margin_delta IS NOT NULL
            AND position_id IS NOT NULL AND position_version_after IS NOT NULL)),
    CONSTRAINT orders_unfilled_unless_executed CHECK (status IN ('executed', 'rolled_back') OR filled_quantity = 0),
    CONSTRAINT orders_rolled_back_is_stamped CHECK ((status = 'rolled_back') = (rolled_back_at IS NOT NULL)),
    CONSTRAINT orders_final_has_response CHECK (status IN ('pending', 'executing') OR response IS NOT NULL)
);
CREATE INDEX orders_id_idx ON orders (id);
CREATE INDEX orders_symbol_idx ON orders (symbol);
CREATE INDEX orders_strategy_idx ON orders (user_id, strategy_id) WHERE strategy_id IS NOT NULL;
CREATE INDEX orders_position_idx ON orders (user_id, position_id) WHERE position_id IS NOT NULL;
-- GET /api/orders keyset pagination, optionally by status.
CREATE INDEX orders_listing_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_status_listing_idx ON orders (user_id, status, created_at DESC, id DESC);
-- The orphan scan looks only at unfinished orders.
CREATE INDEX orders_unfinished_idx ON orders (created_at) WHERE status IN ('pending', 'executing');

CREATE TABLE fills (
    user_id          uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    order_id         uuid NOT NULL,
    symbol           text NOT NULL REFERENCES instruments (symbol) ON DELETE RESTRICT,
    strategy_id      uuid,
    side             text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity         numeric(20, 8) NOT NULL CHECK (quantity > 0),
    price            numeric(20, 8) NOT NULL CHECK (price > 0),
    commission       numeric(24, 8) NOT NULL CHECK (commission >= 0),
    realized_pnl     numeric(24, 8) NOT NULL DEFAULT 0,
    venue            text NOT NULL DEFAULT 'internal',
    transaction_id   uuid NOT NULL,
    filled_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE CASCADE,
    FOREIGN KEY (user_id, strategy_id) REFERENCES strategies (user_id, id) ON DELETE SET NULL (strategy_id)
);
CREATE INDEX fills_order_idx ON fills (user_id, order_id);
CREATE INDEX fills_symbol_idx ON fills (symbol);
CREATE INDEX fills_strategy_idx ON fills (user_id, strategy_id) WHERE strategy_id IS NOT NULL;
-- GET /api/trades keyset pagination.
CREATE INDEX fills_listing_idx ON fills (user_id, filled_at DESC, id DESC);

-- Append-only order lifecycle, hash-chained per account. Kept forever.
CREATE TABLE execution_logs (
    user_id          uuid NOT NULL REFERENCES accounts (user_id) ON DELETE RESTRICT,
    seq              bigint NOT NULL CHECK (seq > 0),
    order_id         uuid NOT NULL,
    event            text NOT NULL CHECK (event IN ('SUBMITTED', 'EXECUTED', 'REJECTED', 'FAILED', 'ROLLED_BACK', 'RECOVERED')),
    reason           text,
    error_code       text,
    transaction_id   uuid NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    prev_hash        bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    row_hash         bytea NOT NULL CHECK (octet_length(row_hash) = 32),
    PRIMARY KEY (user_id, seq),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE RESTRICT
);
CREATE INDEX execution_logs_order_idx ON execution_logs (user_id, order_id);

-- One row for every change of an account's balance or used_margin, written by a trigger on accounts.
CREATE TABLE balance_audit_log (
    user_id          uuid NOT NULL REFERENCES accounts (user_id) ON DELETE RESTRICT,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    order_id         uuid,
    transaction_id   uuid,
    reason           text NOT NULL,
    balance_before   numeric(24, 8) NOT NULL,
    balance_after    numeric(24, 8) NOT NULL,
    margin_before    numeric(24, 8) NOT NULL,
    margin_after     numeric(24, 8) NOT NULL,
    equity_before    numeric NOT NULL,
    equity_after     numeric NOT NULL,
    changed_by       text NOT NULL DEFAULT session_user,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, order_id) REFERENCES orders (user_id, id) ON DELETE RESTRICT
);
CREATE INDEX balance_audit_log_order_idx ON balance_audit_log (user_id, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX balance_audit_log_transaction_idx ON balance_audit_log (user_id, transaction_id);
-- Retention walks old rows in id order.
CREATE INDEX balance_audit_log_retention_idx ON balance_audit_log (created_at, id);
CREATE INDEX balance_audit_log_id_idx ON balance_audit_log (id);

CREATE TABLE error_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    error_code       text NOT NULL,
    message          text NOT NULL,
    context          jsonb NOT NULL DEFAULT '{}',
    -- No FKs: errors are recorded for traders and orders that may not exist.
    user_id          uuid,
    order_id         uuid,
    transaction_id   uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz
);
CREATE INDEX error_log_user_idx ON error_log (user_id, created_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX error_log_retention_idx ON error_log (created_at, id);
CREATE INDEX error_log_unresolved_idx ON error_log (created_at) WHERE resolved_at IS NULL;

CREATE TABLE maintenance_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job              text NOT NULL CHECK (job IN ('orphan-scan', 'audit-retention')),
    trigger          text NOT NULL CHECK (length(trigger) BETWEEN 1 AND 64),
    status           text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    findings         jsonb NOT NULL DEFAULT '{}',
    error            text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX maintenance_runs_job_idx ON maintenance_runs (job, started_at DESC);

-- One row per archived batch: what went to Blob Storage and what was deleted with it.
CREATE TABLE audit_archives (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name           text NOT NULL CHECK (table_name IN ('balance_audit_log', 'error_log')),
    blob_name            text NOT NULL UNIQUE,
    first_id             bigint NOT NULL,
    last_id              bigint NOT NULL,
    row_count            integer NOT NULL CHECK (row_count > 0),
    sha256               text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    cutoff               timestamptz NOT NULL,
    maintenance_run_id   bigint NOT NULL REFERENCES maintenance_runs (id) ON DELETE RESTRICT,
    -- Deletes of archived rows are allowed only in the transaction that recorded their archive.
    created_txid         bigint NOT NULL DEFAULT txid_current(),
    archived_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (first_id <= last_id),
    UNIQUE (table_name, first_id)
);
CREATE INDEX audit_archives_run_idx ON audit_archives (maintenance_run_id);
CREATE INDEX audit_archives_txid_idx ON audit_archives (created_txid);

-- Per-account ledger state at the last archived audit row: the starting point for reconciliation
-- once older audit rows have moved to the archive.
CREATE TABLE ledger_checkpoints (
    user_id          uuid NOT NULL REFERENCES accounts (user_id) ON DELETE RESTRICT,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    archive_id       bigint NOT NULL REFERENCES audit_archives (id) ON DELETE RESTRICT,
    last_audit_id    bigint NOT NULL,
    balance          numeric(24, 8) NOT NULL,
    used_margin      numeric(24, 8) NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
CREATE INDEX ledger_checkpoints_archive_idx ON ledger_checkpoints (archive_id);
CREATE INDEX ledger_checkpoints_latest_idx ON ledger_checkpoints (user_id, last_audit_id DESC);

-- Evolve records the script in its changelog in this same transaction, as the migrating login.
RESET ROLE;
