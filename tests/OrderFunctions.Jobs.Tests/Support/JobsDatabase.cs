using System.Globalization;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Core.Risk;
using OrderFunctions.Testing;

namespace OrderFunctions.Jobs.Tests.Support;

/// <summary>
/// A database of one test's own (a clone of the migrated template), the application's unit of work over it as
/// the app login, and the arranging and inspecting a job test needs: real money movements through the stored
/// functions, and admin (superuser) reads and tampering past row-level security and triggers.
/// </summary>
internal sealed class JobsDatabase : IAsyncDisposable
{
    private JobsDatabase(DatabaseFixture fixture, OrdersDatabase orders)
    {
        Fixture = fixture;
        Orders = orders;
    }

    public DatabaseFixture Fixture { get; }

    /// <summary>The unit of work the jobs use, on the app login.</summary>
    public OrdersDatabase Orders { get; }

    /// <summary>Published chain heads read from an archive that is not configured: nothing to compare with.</summary>
    public static PublishedChainHeads NoPublishedHeads { get; } = new(
        new BlobArchiveStore(new ArchiveStorageSettings { ConnectionString = "", ServiceUri = "", ContainerName = "none" }), TimeProvider.System);

    /// <summary>The risk engine over <see cref="Orders"/>, as the orphan scan's backstop uses it.</summary>
    public RiskEngine Risk(RiskSettings? settings = null) =>
        new(Orders, settings ?? new RiskSettings(), TimeProvider.System, NullLogger<RiskEngine>.Instance);

    /// <param name="throughPgBouncer">True for the jobs to reach the database through PgBouncer in transaction mode, as in Azure.</param>
    public static async Task<JobsDatabase> CreateAsync(bool throughPgBouncer = false)
    {
        var fixture = new DatabaseFixture();
        await fixture.InitializeAsync();
        var connectionString = throughPgBouncer ? (await PgBouncer.GetAsync()).AppConnectionString(fixture.DatabaseName) : fixture.AppConnectionString;
        var settings = new DatabaseSettings { ConnectionString = connectionString };
        return new JobsDatabase(fixture, new OrdersDatabase(OrdersDatabase.CreateDataSource(settings), settings, NullLogger<OrdersDatabase>.Instance));
    }

    public async ValueTask DisposeAsync()
    {
        await Orders.DisposeAsync();
        await Fixture.DisposeAsync();
    }

    // Arranging through the stored functions, as the application calls them.

    public async Task<string> NewInstrumentAsync(decimal lastPrice = 100m)
    {
        var symbol = "J" + Guid.NewGuid().ToString("N")[..12].ToUpperInvariant();
        var items = new JsonArray(new JsonObject
        {
            ["symbol"] = symbol,
            ["contract_size"] = 1m,
            ["margin_rate"] = 0.1m,
            ["commission_rate"] = 0.001m,
            ["min_qty"] = 0.01m,
            ["qty_step"] = 0.01m,
            ["tick_size"] = 0.01m,
            ["last_price"] = lastPrice,
        });
        await SucceedsAsync(Orders.CallAsync(DbRole.Maintenance, null, "SELECT trading.upsert_instruments(@Items::jsonb)::text",
            new { Items = items.ToJsonString() }, Writes.Idempotently, CancellationToken.None));
        return symbol;
    }

    public async Task<Guid> NewTraderAsync(decimal deposit)
    {
        var user = Guid.NewGuid();
        await DepositAsync(user, deposit);
        return user;
    }

    public Task<JsonObject> DepositAsync(Guid user, decimal amount) =>
        SucceedsAsync(Orders.CallAsync(DbRole.Maintenance, user, "SELECT trading.update_user_balance_and_margin(@Amount, 0, 'deposit', true)::text",
            new { Amount = amount }, Writes.NotIdempotently, CancellationToken.None));

    public Task<JsonObject> ExecuteOrderAsync(Guid user, string symbol, string side, decimal quantity) =>
        Orders.CallAsync(DbRole.Api, user,
            "SELECT trading.execute_order(@Symbol, @Side, 'market', @Quantity, NULL, @Key, @Fingerprint)::text",
            new { Symbol = symbol, Side = side, Quantity = quantity, Key = Guid.NewGuid().ToString(), Fingerprint = string.Create(CultureInfo.InvariantCulture, $"{symbol}|{side}|{quantity}") },
            Writes.Idempotently, CancellationToken.None);

    public Task<JsonObject> ExecutedOrderAsync(Guid user, string symbol, string side, decimal quantity) =>
        SucceedsAsync(ExecuteOrderAsync(user, symbol, side, quantity));

    /// <summary>An order the API would never leave behind: inserted as admin, stuck in <paramref name="status"/> since <paramref name="age"/> ago.</summary>
    public Task<Guid> InsertStuckOrderAsync(Guid user, string symbol, string status, TimeSpan age) => AdminAsync(c => c.QuerySingleAsync<Guid>(
        """
        INSERT INTO trading.orders (user_id, symbol, side, type, quantity, status, transaction_id, idempotency_key,
                                    request_fingerprint, created_at, updated_at)
        VALUES (@User, @Symbol, 'buy', 'market', 1, @Status, gen_random_uuid(), gen_random_uuid()::text, 'stuck',
                now() - @Age, now() - @Age)
        RETURNING id
        """, new { User = user, Symbol = symbol, Status = status, Age = age }));

    // Admin: reads and tampering past row-level security; session_replication_role = replica skips triggers.

    public async Task<T> AdminAsync<T>(Func<NpgsqlConnection, Task<T>> work)
    {
        await using var connection = await Fixture.OpenAdminConnectionAsync();
        return await work(connection);
    }

    public Task<int> TamperAsync(string sql, object? args = null) => AdminAsync(async c =>
    {
        await c.ExecuteAsync("SET session_replication_role = replica");
        return await c.ExecuteAsync(sql, args);
    });

    public Task<long> MaxIdAsync(string table) =>
        AdminAsync(c => c.QuerySingleAsync<long>(Tables.Sql("SELECT coalesce(max(id), 0) FROM trading.{0}", table)));

    public Task<long> CountAsync(string sql, object? args = null) => AdminAsync(c => c.QuerySingleAsync<long>(sql, args));

    public async Task<List<long>> IdsAsync(string table) =>
        (await AdminAsync(c => c.QueryAsync<long>(Tables.Sql("SELECT id FROM trading.{0} ORDER BY id", table)))).AsList();

    /// <summary>Moves rows up to <paramref name="maxId"/> into the past, skipping the append-only triggers.</summary>
    public Task<int> AgeRowsAsync(string table, long maxId, TimeSpan by) =>
        TamperAsync(Tables.Sql("UPDATE trading.{0} SET created_at = created_at - @By WHERE id <= @MaxId", table), new { By = by, MaxId = maxId });

    /// <summary>Each row as its archive line: to_jsonb text with timestamps in UTC, in id order.</summary>
    public async Task<List<string>> ArchiveLinesAsync(string table, long maxId) => (await AdminAsync(async c =>
    {
        await c.ExecuteAsync("SET TimeZone = 'UTC'");
        return await c.QueryAsync<string>(Tables.Sql("SELECT to_jsonb(t)::text FROM trading.{0} t WHERE id <= @MaxId ORDER BY id", table), new { MaxId = maxId });
    })).AsList();

    public async Task<IReadOnlyList<RunRow>> RunsAsync() => (await AdminAsync(c => c.QueryAsync<RunRow>(
        "SELECT id, job, trigger, status, findings::text AS findings, error, started_at, finished_at FROM trading.maintenance_runs ORDER BY id"))).AsList();

    public Task<RunRow> RunAsync(long id) => AdminAsync(c => c.QuerySingleAsync<RunRow>(
        "SELECT id, job, trigger, status, findings::text AS findings, error, started_at, finished_at FROM trading.maintenance_runs WHERE id = @Id", new { Id = id }));

    public async Task<IReadOnlyList<ArchiveRow>> ArchivesAsync() => (await AdminAsync(c => c.QueryAsync<ArchiveRow>(
        "SELECT id, table_name, blob_name, first_id, last_id, row_count, sha256, maintenance_run_id FROM trading.audit_archives ORDER BY table_name, first_id"))).AsList();

    private static async Task<JsonObject> SucceedsAsync(Task<JsonObject> call)
    {
        var envelope = await call;
        Assert.True((bool?)envelope["success"] == true, $"the arranging call failed: {envelope.ToJsonString()}");
        return envelope;
    }
}

/// <summary>The tables retention covers; only these names are ever put into test SQL.</summary>
internal static class Tables
{
    public const string BalanceAuditLog = "balance_audit_log";
    public const string ErrorLog = "error_log";

    public static string Sql(string template, string table) => table is BalanceAuditLog or ErrorLog
        ? string.Format(CultureInfo.InvariantCulture, template, table)
        : throw new ArgumentOutOfRangeException(nameof(table), table, "not a retention table");
}

internal sealed record RunRow(long Id, string Job, string Trigger, string Status, string Findings, string? Error, DateTime StartedAt, DateTime? FinishedAt)
{
    public JsonObject FindingsJson => JsonNode.Parse(Findings)!.AsObject();
}

internal sealed record ArchiveRow(long Id, string TableName, string BlobName, long FirstId, long LastId, int RowCount, string Sha256, long MaintenanceRunId);
