using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>The schema as code: each deliberate choice of the data model read back from the catalogs.</summary>
public sealed class SchemaTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private static readonly string[] TenantTables =
        ["accounts", "balance_audit_log", "chain_checkpoints", "deposit_requests", "error_log", "execution_logs", "fills", "ledger_checkpoints", "orders",
         "positions", "strategies", "write_offs"];

    /// <summary>What the risk engine's set-based closes write (R__08's orders_risk policies).</summary>
    private static readonly string[] RiskTables =
        ["accounts", "balance_audit_log", "error_log", "execution_logs", "fills", "orders", "positions", "write_offs"];

    [Fact]
    public async Task Trading_schema_has_exactly_the_tables_of_the_data_model()
    {
        var tables = await NamesAsync("SELECT relname FROM pg_class WHERE relnamespace = 'trading'::regnamespace AND relkind IN ('r', 'p')");

        Assert.Equal(
            ["accounts", "audit_archives", "balance_audit_log", "chain_checkpoints", "deposit_requests", "error_codes", "error_log", "execution_logs", "fills",
             "instruments",
             "ledger_checkpoints", "maintenance_runs", "orders", "positions", "retention_floors", "risk_events", "strategies", "write_offs"],
            tables);
    }

    [Fact]
    public async Task Every_foreign_key_has_its_deliberate_on_delete_action()
    {
        const string foreignKeys = """
            SELECT t.relname || '(' || (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
                                        FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
                   || ') -> ' || r.relname || '(' || (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
                                                     FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
                                                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum)
                   || ') ON DELETE ' || CASE c.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
                                                           WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END
                   || coalesce(' (' || (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
                                        FROM unnest(c.confdelsetcols) WITH ORDINALITY k(attnum, ord)
                                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) || ')', '')
            FROM pg_constraint c
            JOIN pg_class t ON t.oid = c.conrelid
            JOIN pg_class r ON r.oid = c.confrelid
            WHERE c.contype = 'f' AND c.connamespace = 'trading'::regnamespace
            """;

        var actual = await NamesAsync(foreignKeys);

        // RESTRICT for money and history, CASCADE for pure children, SET NULL (column) for optional tags.
        Assert.Equal(
            new[]
            {
                "audit_archives(maintenance_run_id) -> maintenance_runs(id) ON DELETE RESTRICT",
                "balance_audit_log(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "balance_audit_log(user_id, order_id) -> orders(user_id, id) ON DELETE RESTRICT",
                "chain_checkpoints(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "deposit_requests(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "execution_logs(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "execution_logs(user_id, order_id) -> orders(user_id, id) ON DELETE RESTRICT",
                "fills(user_id, order_id) -> orders(user_id, id) ON DELETE CASCADE",
                "fills(user_id, strategy_id) -> strategies(user_id, id) ON DELETE SET NULL (strategy_id)",
                "ledger_checkpoints(archive_id) -> audit_archives(id) ON DELETE RESTRICT",
                "ledger_checkpoints(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "orders(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "orders(user_id, position_id) -> positions(user_id, id) ON DELETE RESTRICT",
                "orders(user_id, strategy_id) -> strategies(user_id, id) ON DELETE SET NULL (strategy_id)",
                "positions(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "positions(user_id, strategy_id) -> strategies(user_id, id) ON DELETE SET NULL (strategy_id)",
                "strategies(user_id) -> accounts(user_id) ON DELETE CASCADE",
                "write_offs(user_id) -> accounts(user_id) ON DELETE RESTRICT",
                "write_offs(user_id, order_id) -> orders(user_id, id) ON DELETE RESTRICT",
            },
            actual);
    }

    [Fact]
    public async Task Every_foreign_key_is_the_leading_columns_of_an_index()
    {
        // The leading columns in any order: an index on (user_id, order_id) serves a key (order_id, user_id) too.
        const string foreignKeys = """
            SELECT t.relname || '.' || c.conname AS name,
                   EXISTS (
                       SELECT 1
                       FROM pg_index i
                       WHERE i.indrelid = c.conrelid
                         AND i.indnkeyatts >= cardinality(c.conkey)
                         AND (SELECT array_agg(k ORDER BY k) FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(k, ord)
                              WHERE u.ord <= cardinality(c.conkey))
                             = (SELECT array_agg(k ORDER BY k) FROM unnest(c.conkey) k)) AS indexed
            FROM pg_constraint c
            JOIN pg_class t ON t.oid = c.conrelid
            WHERE c.contype = 'f' AND c.connamespace = 'trading'::regnamespace
            """;

        var all = await QueryAsync<(string Name, bool Indexed)>(foreignKeys);

        Assert.NotEmpty(all);
        Assert.Empty(all.Where(k => !k.Indexed).Select(k => k.Name));
    }

    [Fact]
    public async Task Every_tenant_table_enables_and_forces_row_level_security()
    {
        var forced = await NamesAsync(
            "SELECT relname FROM pg_class WHERE relnamespace = 'trading'::regnamespace AND relkind = 'r' AND relrowsecurity AND relforcerowsecurity");
        var enabledOnly = await NamesAsync(
            "SELECT relname FROM pg_class WHERE relnamespace = 'trading'::regnamespace AND relkind = 'r' AND relrowsecurity AND NOT relforcerowsecurity");

        // risk_events is no trader's, but forced too: only the risk engine and maintenance have policies on it.
        Assert.Equal(TenantTables.Append("risk_events").Order(StringComparer.Ordinal), forced);
        Assert.Empty(enabledOnly);
    }

    [Fact]
    public async Task Policies_are_exactly_tenant_maintenance_archiver_risk_and_verifier()
    {
        var policies = await NamesAsync(
            """
            SELECT tablename || ' ' || policyname || ' ' || cmd || ' ' || permissive || ' {' || array_to_string(ARRAY(SELECT unnest(roles) ORDER BY 1), ',') || '}'
            FROM pg_policies
            WHERE schemaname = 'trading'
            """);

        var expected = TenantTables
            .SelectMany(t => new[]
            {
                $"{t} {t}_tenant ALL PERMISSIVE {{orders_api,orders_owner}}",
                $"{t} {t}_maintenance SELECT PERMISSIVE {{orders_maintenance}}",
            })
            .Concat(new[] { "balance_audit_log", "error_log", "ledger_checkpoints" }.Select(t => $"{t} {t}_archiver ALL PERMISSIVE {{orders_archiver}}"))
            .Concat(RiskTables.Select(t => $"{t} {t}_risk ALL PERMISSIVE {{orders_risk}}"))
            .Concat(["risk_events risk_events_risk ALL PERMISSIVE {orders_risk}", "risk_events risk_events_maintenance SELECT PERMISSIVE {orders_maintenance}"])
            // The verifier reads every chain and writes only the chain checkpoints.
            .Concat(new[] { "accounts", "execution_logs", "balance_audit_log", "ledger_checkpoints" }.Select(t => $"{t} {t}_verifier SELECT PERMISSIVE {{orders_verifier}}"))
            .Append("chain_checkpoints chain_checkpoints_verifier ALL PERMISSIVE {orders_verifier}")
            .Order(StringComparer.Ordinal);
        Assert.Equal(expected, policies);
    }

    [Fact]
    public async Task Tenant_policies_filter_and_check_on_the_acting_user()
    {
        var rows = await QueryAsync<(string Table, string? Qual, string? Check)>(
            "SELECT tablename, qual, with_check FROM pg_policies WHERE schemaname = 'trading' AND policyname LIKE '%\\_tenant'");

        Assert.Equal(TenantTables.Length, rows.Count);
        Assert.All(rows, r =>
        {
            Assert.Equal("(user_id = trading.app_current_user())", r.Qual);
            Assert.Equal("(user_id = trading.app_current_user())", r.Check);
        });
    }

    [Fact]
    public async Task Every_security_definer_function_pins_its_search_path()
    {
        var definers = await QueryAsync<(string Name, string? SearchPath)>(
            """
            SELECT p.proname,
                   (SELECT substr(s, length('search_path=') + 1) FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%')
            FROM pg_proc p
            WHERE p.pronamespace = 'trading'::regnamespace AND p.prosecdef
            """);
        var functions = definers.OrderBy(f => f.Name, StringComparer.Ordinal).ToList();

        // The money paths at least; any SECURITY DEFINER function added later is held to the same rule.
        Assert.Superset(
            new HashSet<string>(["deposit", "execute_order", "rollback_order_execution", "update_user_balance_and_margin", "upsert_instruments",
                                 "validate_atomic_execution_integrity", "delete_archived_audit_rows", "set_prices", "set_position_stops", "sync_positions",
                                 "enqueue_price_checks", "process_risk_events", "risk_backstop"]),
            functions.Select(f => f.Name).ToHashSet());
        Assert.All(functions, f =>
        {
            Assert.False(f.SearchPath is null, $"{f.Name} runs with the caller's search_path");
            var path = f.SearchPath!.Split(',', StringSplitOptions.TrimEntries);
            // pg_temp last, or a caller's temporary objects would shadow the schema's.
            Assert.Equal("pg_temp", path[^1]);
            Assert.DoesNotContain("public", path);
            Assert.DoesNotContain("\"$user\"", path);
        });
    }

    [Fact]
    public async Task No_trading_function_is_executable_by_public()
    {
        // A NULL proacl means the default: EXECUTE for PUBLIC.
        var executableByPublic = await NamesAsync(
            """
            SELECT p.proname
            FROM pg_proc p
            WHERE p.pronamespace = 'trading'::regnamespace
              AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
                          WHERE acl.grantee = 0 AND acl.privilege_type = 'EXECUTE')
            """);
        var functions = await NamesAsync("SELECT proname FROM pg_proc WHERE pronamespace = 'trading'::regnamespace");

        Assert.Contains("execute_order", functions);
        Assert.Empty(executableByPublic);
    }

    [Fact]
    public async Task Positions_have_a_partial_unique_index_for_one_open_position_per_trader_and_symbol()
    {
        var definition = await database.AdminScalarAsync<string>(
            "SELECT pg_get_indexdef('trading.positions_one_open_per_symbol'::regclass)");

        Assert.Equal("CREATE UNIQUE INDEX positions_one_open_per_symbol ON trading.positions USING btree (user_id, symbol) WHERE (status = 'open'::text)", definition);
    }

    [Fact]
    public async Task A_second_open_position_for_the_same_trader_and_symbol_is_refused_but_a_closed_one_is_not()
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var arrange = await ArrangeTraderAndInstrumentAsync(connection, transaction);
        const string insert = """
            INSERT INTO trading.positions (user_id, symbol, side, quantity, avg_entry_price, status, closed_at)
            VALUES (@user, @symbol, 'long', @quantity, 100, @status, CASE WHEN @status = 'closed' THEN now() END)
            """;
        await connection.ExecuteAsync(new CommandDefinition(insert, new { user = arrange.User, symbol = arrange.Symbol, quantity = 1m, status = "open" }, transaction));
        await connection.ExecuteAsync(new CommandDefinition(insert, new { user = arrange.User, symbol = arrange.Symbol, quantity = 0m, status = "closed" }, transaction));

        var e = await Assert.ThrowsAsync<PostgresException>(() =>
            connection.ExecuteAsync(new CommandDefinition(insert, new { user = arrange.User, symbol = arrange.Symbol, quantity = 2m, status = "open" }, transaction)));

        Assert.Equal(PostgresErrorCodes.UniqueViolation, e.SqlState);
        Assert.Equal("positions_one_open_per_symbol", e.ConstraintName);
    }

    [Fact]
    public async Task Orders_have_a_unique_idempotency_key_per_trader()
    {
        var unique = await NamesAsync(
            """
            SELECT array_to_string(ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord), ', ')
            FROM pg_constraint c
            WHERE c.conrelid = 'trading.orders'::regclass AND c.contype = 'u'
            """);

        Assert.Contains("user_id, idempotency_key", unique);
    }

    [Fact]
    public async Task A_second_order_with_the_same_idempotency_key_is_refused()
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var arrange = await ArrangeTraderAndInstrumentAsync(connection, transaction);
        const string insert = """
            INSERT INTO trading.orders (user_id, symbol, side, type, quantity, status, transaction_id, idempotency_key, request_fingerprint)
            VALUES (@user, @symbol, 'buy', 'market', 1, 'pending', gen_random_uuid(), 'same-key', 'fingerprint')
            """;
        await connection.ExecuteAsync(new CommandDefinition(insert, new { user = arrange.User, symbol = arrange.Symbol }, transaction));

        var e = await Assert.ThrowsAsync<PostgresException>(() =>
            connection.ExecuteAsync(new CommandDefinition(insert, new { user = arrange.User, symbol = arrange.Symbol }, transaction)));

        Assert.Equal(PostgresErrorCodes.UniqueViolation, e.SqlState);
        Assert.Equal("orders_user_id_idempotency_key_key", e.ConstraintName);
    }

    [Fact]
    public async Task Accounts_and_positions_leave_room_on_their_pages_for_hot_updates()
    {
        // Every order updates its account and usually its position: with free space on the page those
        // updates stay HOT (no index writes).
        var tables = await NamesAsync("""
            SELECT relname FROM pg_class
            WHERE relnamespace = 'trading'::regnamespace AND relkind = 'r' AND 'fillfactor=80' = ANY (reloptions)
            """);

        Assert.Equal(["accounts", "positions"], tables);
    }

    [Fact]
    public async Task Risk_engine_functions_belong_to_orders_risk_which_cannot_log_in_and_only_its_entry_points_are_granted()
    {
        var owned = await NamesAsync("SELECT proname FROM pg_proc WHERE pronamespace = 'trading'::regnamespace AND proowner = 'orders_risk'::regrole");
        var grants = await NamesAsync(
            """
            SELECT p.proname || ' -> ' || acl.grantee::regrole::text
            FROM pg_proc p
            CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
            WHERE p.pronamespace = 'trading'::regnamespace AND p.proowner = 'orders_risk'::regrole
              AND acl.privilege_type = 'EXECUTE' AND acl.grantee <> p.proowner
            """);
        var canLogIn = await database.AdminScalarAsync<bool>("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'orders_risk'");

        Assert.Equal(["accounts_below_margin_level", "close_positions", "close_queued", "enqueue_price_checks", "liquidate_below", "process_risk_events", "risk_backstop"],
            owned);
        // The set-based closes are reached only through the entry points: prices queue work, maintenance works it.
        Assert.Equal(["enqueue_price_checks -> orders_owner", "process_risk_events -> orders_maintenance", "risk_backstop -> orders_maintenance"], grants);
        Assert.False(canLogIn);
    }

    [Fact]
    public async Task Positions_have_partial_indexes_that_find_crossed_stops_by_range_and_holders_by_symbol()
    {
        var definitions = await NamesAsync(
            """
            SELECT pg_get_indexdef(c.oid) FROM pg_class c
            WHERE c.relname IN ('positions_open_stop_loss_idx', 'positions_open_take_profit_idx', 'positions_symbol_idx')
              AND c.relnamespace = 'trading'::regnamespace
            """);

        Assert.Equal(
            [
                "CREATE INDEX positions_open_stop_loss_idx ON trading.positions USING btree (symbol, side, stop_loss) WHERE ((status = 'open'::text) AND (stop_loss IS NOT NULL))",
                "CREATE INDEX positions_open_take_profit_idx ON trading.positions USING btree (symbol, side, take_profit) WHERE ((status = 'open'::text) AND (take_profit IS NOT NULL))",
                "CREATE INDEX positions_symbol_idx ON trading.positions USING btree (symbol, status)",
            ],
            definitions);
    }

    [Fact]
    public async Task Orders_allow_one_executed_system_close_per_position_index_their_write_offs_and_risk_events_hold_one_close_per_position_and_check_per_symbol()
    {
        var definitions = await NamesAsync(
            """
            SELECT pg_get_indexdef(c.oid) FROM pg_class c
            WHERE c.relname IN ('orders_one_system_close_per_position', 'risk_events_one_per_position', 'risk_events_one_check_per_symbol',
                                'orders_write_off_idx')
              AND c.relnamespace = 'trading'::regnamespace
            """);

        Assert.Equal(
            [
                "CREATE INDEX orders_write_off_idx ON trading.orders USING btree (user_id, id) WHERE (write_off <> (0)::numeric)",
                "CREATE UNIQUE INDEX orders_one_system_close_per_position ON trading.orders USING btree (user_id, position_id) WHERE ((source = 'system'::text) AND (status = 'executed'::text))",
                "CREATE UNIQUE INDEX risk_events_one_check_per_symbol ON trading.risk_events USING btree (symbol) WHERE (kind = 'price_moved'::text)",
                "CREATE UNIQUE INDEX risk_events_one_per_position ON trading.risk_events USING btree (user_id, position_id) WHERE (position_id IS NOT NULL)",
            ],
            definitions);
    }

    [Fact]
    public async Task The_tables_an_order_writes_have_exactly_the_indexes_their_routes_jobs_and_keys_need()
    {
        // V1_5_1 says which route, job or key needs each one; an index added or dropped without saying why fails here.
        var indexes = await NamesAsync(
            """
            SELECT t.relname || ' ' || c.relname FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relnamespace = 'trading'::regnamespace AND t.relname IN ('orders', 'fills', 'balance_audit_log')
            """);

        Assert.Equal(
            [
                "balance_audit_log balance_audit_log_id_idx",
                "balance_audit_log balance_audit_log_order_idx",
                "balance_audit_log balance_audit_log_pkey",
                "balance_audit_log balance_audit_log_transaction_idx",
                "fills fills_listing_idx",
                "fills fills_order_idx",
                "fills fills_pkey",
                "fills fills_strategy_idx",
                "orders orders_id_idx",
                "orders orders_listing_idx",
                "orders orders_one_system_close_per_position",
                "orders orders_pkey",
                "orders orders_position_idx",
                "orders orders_status_listing_idx",
                "orders orders_strategy_idx",
                "orders orders_unfinished_idx",
                "orders orders_user_id_idempotency_key_key",
                "orders orders_user_id_transaction_id_key",
                "orders orders_write_off_idx",
            ],
            indexes);
    }

    [Theory]
    [InlineData("DELETE FROM trading.instruments WHERE symbol = @symbol")]
    [InlineData("UPDATE trading.instruments SET symbol = @symbol || 'X' WHERE symbol = @symbol")]
    [InlineData("TRUNCATE trading.instruments CASCADE")]
    public async Task An_instrument_is_never_deleted_and_its_symbol_never_changes(string statement)
    {
        // Positions, orders and fills name their instrument by symbol without a foreign key (V1_5_1): this rule keeps
        // every such name pointing at its instrument, for the owner and the superuser alike.
        var trading = new Trading(database);
        var instrument = await trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await trading.NewTraderAsync(1_000m);
        await trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);

        foreach (var asOwner in new[] { true, false })
        {
            var e = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var connection = await database.OpenAdminConnectionAsync();
                await using var transaction = await connection.BeginTransactionAsync();
                if (asOwner)
                {
                    await connection.ExecuteAsync(new CommandDefinition("SET LOCAL ROLE orders_owner", transaction: transaction));
                }

                await connection.ExecuteAsync(new CommandDefinition(statement, new { symbol = instrument.Symbol }, transaction));
                await transaction.CommitAsync();
            });

            Assert.Equal(PostgresErrorCodes.RestrictViolation, e.SqlState);
            Assert.Contains("instruments are never deleted and symbols never change", e.MessageText, StringComparison.Ordinal);
        }

        Assert.Equal(100m, await trading.AdminAsync(c => c.ExecuteScalarAsync<decimal>(
            "SELECT last_price FROM trading.instruments WHERE symbol = @symbol", new { symbol = instrument.Symbol })));
    }

    [Fact]
    public async Task An_instrument_keeps_changing_everything_but_its_symbol()
    {
        var trading = new Trading(database);
        var instrument = await trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);

        var changed = await trading.AdminAsync(c => c.ExecuteAsync(
            "UPDATE trading.instruments SET symbol = symbol, margin_rate = 0.2, tradable = false WHERE symbol = @symbol", new { symbol = instrument.Symbol }));

        Assert.Equal(1, changed);
    }

    [Fact]
    public async Task A_second_executed_system_close_of_one_position_is_refused()
    {
        // Arrange: a stop-loss closed by the risk engine.
        var trading = new Trading(database);
        var instrument = await trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await trading.NewTraderAsync(1_000m);
        await trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m);
        await trading.SetPricesAsync((instrument.Symbol, 90m));
        await trading.DrainAsync();
        var stop = Assert.Single(await trading.OrdersAsync(user), o => o.Type == "stop_loss");

        // Act: the same close once more, as the admin.
        var e = await Assert.ThrowsAsync<PostgresException>(() => trading.AdminAsync(c => c.ExecuteAsync(
            """
            INSERT INTO trading.orders
            SELECT (jsonb_populate_record(o, jsonb_build_object('id', gen_random_uuid(), 'transaction_id', gen_random_uuid(),
                                                               'idempotency_key', gen_random_uuid()::text))).*
            FROM trading.orders o WHERE o.user_id = @user AND o.id = @id
            """, new { user, id = stop.Id })));

        Assert.Equal(PostgresErrorCodes.UniqueViolation, e.SqlState);
        Assert.Equal("orders_one_system_close_per_position", e.ConstraintName);
    }

    private async Task<List<T>> QueryAsync<T>(string sql)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        return (await connection.QueryAsync<T>(sql)).AsList();
    }

    /// <summary>One text column, in ordinal order (independent of the server's collation).</summary>
    private async Task<List<string>> NamesAsync(string sql) => (await QueryAsync<string>(sql)).Order(StringComparer.Ordinal).ToList();

    private static async Task<(Guid User, string Symbol)> ArrangeTraderAndInstrumentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        var user = Guid.NewGuid();
        var symbol = Instrument.NewSymbol();
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO trading.accounts (user_id, balance) VALUES (@user, 1000);
            INSERT INTO trading.instruments (symbol, contract_size, margin_rate, min_qty, qty_step, tick_size) VALUES (@symbol, 1, 0.1, 0.01, 0.01, 0.01);
            """, new { user, symbol }, transaction));
        return (user, symbol);
    }
}
