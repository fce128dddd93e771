-- Demo data for the run command (scripts/run.sh), kept apart from the migrations: a few instruments and
-- one funded trader, written once through the same audited functions the API uses. Safe to run again.
\set ON_ERROR_STOP on
BEGIN;
SET LOCAL ROLE orders_maintenance;

SELECT trading.upsert_instruments($$[
  {"symbol": "EURUSD", "description": "Euro / US dollar", "contract_size": 100000, "margin_rate": 0.0333, "commission_rate": 0.00002,
   "min_qty": 0.01, "qty_step": 0.01, "tick_size": 0.00001, "last_price": 1.08450},
  {"symbol": "GBPUSD", "description": "British pound / US dollar", "contract_size": 100000, "margin_rate": 0.0333, "commission_rate": 0.00002,
   "min_qty": 0.01, "qty_step": 0.01, "tick_size": 0.00001, "last_price": 1.26720},
  {"symbol": "BTCUSD", "description": "Bitcoin / US dollar", "contract_size": 1, "margin_rate": 0.5, "commission_rate": 0.001,
   "min_qty": 0.0001, "qty_step": 0.0001, "tick_size": 0.01, "last_price": 64250.00},
  {"symbol": "XAUUSD", "description": "Gold / US dollar", "contract_size": 100, "margin_rate": 0.05, "commission_rate": 0.0001,
   "min_qty": 0.01, "qty_step": 0.01, "tick_size": 0.01, "last_price": 2351.40}
]$$::jsonb)
WHERE NOT EXISTS (SELECT 1 FROM trading.instruments);

SELECT set_config('app.user_id', 'a11ce000-0000-4000-8000-000000000001', true);
SELECT trading.update_user_balance_and_margin(100000, 0, 'demo deposit', true)
WHERE NOT EXISTS (SELECT 1 FROM trading.accounts WHERE user_id = 'a11ce000-0000-4000-8000-000000000001');
COMMIT;
