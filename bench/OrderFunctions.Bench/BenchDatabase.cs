using System.Globalization;
using Dapper;
using Npgsql;
using OrderFunctions.Db;

namespace OrderFunctions.Bench;

/// <summary>Creates the benchmark's databases from scratch: the migrated orders database, seeded, and pgbench's.</summary>
public sealed class BenchDatabase(BenchOptions options)
{
    public const string AppLogin = "orders_bench_app";
    public const string AppPassword = "orders_bench_app";
    public const decimal Deposit = 1_000_000_000m;

    public string OrdersConnectionString => WithDatabase(options.DatabaseName);
    public string TpcbConnectionString => WithDatabase(options.DatabaseName + "_tpcb");

    public string AppConnectionString => new NpgsqlConnectionStringBuilder(OrdersConnectionString)
    {
        Username = AppLogin,
        Password = AppPassword,
        // The admin strings disable pooling (databases get dropped); the app's must pool, as it does in production.
        Pooling = true,
        // As many connections as clients, so the pool never queues a request.
        MaxPoolSize = Math.Max(20, options.Clients * 2),
    }.ConnectionString;

    /// <summary>Trader i (1-based) has a fixed UUID, so the pgbench script can name the same accounts.</summary>
    public static Guid TraderId(int i) => Guid.Parse("00000000-0000-4000-8000-" + i.ToString("D12", CultureInfo.InvariantCulture));

    public static string Symbol(int i) => "BENCH" + i.ToString(CultureInfo.InvariantCulture);

    public async Task CreateAsync(CancellationToken cancellationToken)
    {
        await RecreateAsync(options.DatabaseName, cancellationToken);
        await RecreateAsync(options.DatabaseName + "_tpcb", cancellationToken);
        Migrator.Run(MigrationCommand.Migrate, OrdersConnectionString);

        await using var connection = new NpgsqlConnection(OrdersConnectionString);
        await connection.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition($"""
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{AppLogin}') THEN
                    CREATE ROLE {AppLogin} LOGIN PASSWORD '{AppPassword}';
                END IF;
            END
            $$;
            SELECT trading.grant_application_roles('{AppLogin}');
            """, cancellationToken: cancellationToken));

        var instruments = Enumerable.Range(1, options.Symbols).Select(i => new
        {
            symbol = Symbol(i), description = "benchmark instrument " + i, contract_size = 1m, margin_rate = 0.05m,
            commission_rate = 0.0001m, min_qty = 0.01m, qty_step = 0.01m, tick_size = 0.01m, last_price = 100m,
        });
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "SET LOCAL ROLE orders_maintenance; SELECT trading.upsert_instruments(@Items::jsonb);",
                new { Items = System.Text.Json.JsonSerializer.Serialize(instruments) }, transaction, cancellationToken: cancellationToken));
            for (var i = 1; i <= options.Traders; i++)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "SELECT set_config('app.user_id', @User, true); SELECT trading.update_user_balance_and_margin(@Deposit, 0, 'benchmark deposit', true);",
                    new { User = TraderId(i).ToString(), Deposit }, transaction, cancellationToken: cancellationToken));
            }

            await transaction.CommitAsync(cancellationToken);
        }

        // (Dapper treats a one-word command as a procedure name: say it is text.)
        await connection.ExecuteAsync(new CommandDefinition("ANALYZE", commandType: System.Data.CommandType.Text, cancellationToken: cancellationToken));
    }

    private async Task RecreateAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(WithDatabase("postgres"));
        await connection.OpenAsync(cancellationToken);
        // Names come from options, never from requests; quote them anyway.
        var quoted = "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        await connection.ExecuteAsync(new CommandDefinition($"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition($"CREATE DATABASE {quoted}", cancellationToken: cancellationToken));
    }

    private string WithDatabase(string database) =>
        new NpgsqlConnectionStringBuilder(options.AdminConnectionString) { Database = database, Pooling = false }.ConnectionString;

    /// <summary>A libpq URL for pgbench (same server, user and password as the admin connection string).</summary>
    public static string LibpqUrl(string npgsqlConnectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(npgsqlConnectionString);
        var password = string.IsNullOrEmpty(b.Password) ? "" : ":" + Uri.EscapeDataString(b.Password);
        return $"postgresql://{Uri.EscapeDataString(b.Username ?? "postgres")}{password}@{b.Host}:{b.Port}/{Uri.EscapeDataString(b.Database ?? "postgres")}";
    }
}
