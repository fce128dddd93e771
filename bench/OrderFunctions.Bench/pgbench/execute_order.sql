-- pgbench: the database-side cost of one order, as the API issues it: role and acting user set, then
-- execute_order, in ONE round trip (`\;` keeps both statements in one simple-protocol message, which
-- PostgreSQL runs as one implicit transaction). Variables: traders, symbols (set with -D).
\set trader random(1, :traders)
\set symbol random(1, :symbols)
\set side random(0, 1)
SELECT set_config('role', 'orders_api', true), set_config('app.user_id', '00000000-0000-4000-8000-' || lpad(:trader::text, 12, '0'), true) \;
SELECT trading.execute_order('BENCH' || :symbol, CASE :side WHEN 0 THEN 'buy' ELSE 'sell' END, 'market', 0.01, NULL, gen_random_uuid()::text, 'pgbench');
