-- pgbench: the rows of one executed order and nothing else (rows_floor_setup.sql), as execute_order.sql calls
-- execute_order: role and acting user set, then the call, in one round trip. Variables: traders, symbols (-D).
\set trader random(1, :traders)
\set symbol random(1, :symbols)
SELECT set_config('role', 'orders_api', true), set_config('app.user_id', '00000000-0000-4000-8000-' || lpad(:trader::text, 12, '0'), true) \;
SELECT bench_floor.order_rows('BENCH' || :symbol, gen_random_uuid()::text);
