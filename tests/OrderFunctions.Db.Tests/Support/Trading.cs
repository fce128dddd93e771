using System.Globalization;
using Dapper;
using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests.Support;

/// <summary>
/// Calls the stored functions the way the application does: the application's login, one transaction per
/// call, first the role and the acting trader (transaction-local), then one function call, then commit.
/// Reads back as admin, past row-level security.
/// </summary>
internal sealed class Trading(DatabaseFixture database)
{
    public const string Api = "orders_api";
    public const string Maintenance = "orders_maintenance";

    private const string SetContext = "SELECT set_config('role', @role, true), set_config('app.user_id', @user, true)";

    public DatabaseFixture Database => database;

    /// <summary>One transaction as the application: role and acting user first, then <paramref name="work"/>, then commit.</summary>
    public async Task<T> InTransactionAsync<T>(string role, Guid? user, Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work)
    {
        await using var connection = new NpgsqlConnection(database.AppConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await SetContextAsync(connection, transaction, role, user);
        var result = await work(connection, transaction);
        await transaction.CommitAsync();
        return result;
    }

    public static Task SetContextAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string role, Guid? user) =>
        connection.ExecuteAsync(new CommandDefinition(SetContext, new { role, user = user?.ToString() ?? "" }, transaction));

    /// <summary>One function call that returns an envelope, in its own transaction.</summary>
    public Task<Envelope> CallAsync(string role, Guid? user, string sql, object? parameters = null) =>
        InTransactionAsync(role, user, async (connection, transaction) =>
            Envelope.Parse(await connection.QuerySingleAsync<string>(new CommandDefinition(sql, parameters, transaction))));

    /// <summary>One scalar query in its own transaction, as <paramref name="role"/> acting for <paramref name="user"/>.</summary>
    public Task<T> ScalarAsync<T>(string role, Guid? user, string sql, object? parameters = null) =>
        InTransactionAsync(role, user, async (connection, transaction) =>
            await connection.ExecuteScalarAsync<T>(new CommandDefinition(sql, parameters, transaction)) ?? throw new InvalidOperationException($"no value from {sql}"));

    /// <summary>The rows of a set-returning function as a jsonb array text, as maintenance sees them: "[]" when there are none.</summary>
    public Task<string> RowsAsync(string functionCall, Guid user) =>
        ScalarAsync<string>(Maintenance, null, $"SELECT coalesce(jsonb_agg(x), '[]')::text FROM {functionCall} x", new { user });

    public const string ExecuteOrderSql =
        "SELECT trading.execute_order(@symbol, @side, @type, @quantity, @limit_price, @key, @fingerprint, NULL, @stop_loss, @take_profit, @reduce_only)::text";

    public static object OrderParameters(string symbol, string side, decimal quantity, string type, decimal? limitPrice, string key, string? fingerprint,
        decimal? stopLoss = null, decimal? takeProfit = null, bool reduceOnly = false) => new
    {
        symbol,
        side,
        type,
        quantity,
        limit_price = limitPrice,
        key,
        fingerprint = fingerprint ?? string.Create(CultureInfo.InvariantCulture, $"{symbol}|{side}|{type}|{quantity}|{limitPrice}|{stopLoss}|{takeProfit}{(reduceOnly ? "|reduce_only" : "")}"),
        stop_loss = stopLoss,
        take_profit = takeProfit,
        reduce_only = reduceOnly,
    };

    public Task<Envelope> ExecuteOrderAsync(
        Guid user, string symbol, string side, decimal quantity, string type = "market", decimal? limitPrice = null, string? key = null, string? fingerprint = null,
        decimal? stopLoss = null, decimal? takeProfit = null, bool reduceOnly = false) =>
        CallAsync(Api, user, ExecuteOrderSql,
            OrderParameters(symbol, side, quantity, type, limitPrice, key ?? Guid.NewGuid().ToString(), fingerprint, stopLoss, takeProfit, reduceOnly));

    /// <summary>An order that must execute; returns its envelope.</summary>
    public async Task<Envelope> ExecutedOrderAsync(Guid user, string symbol, string side, decimal quantity, decimal? stopLoss = null, decimal? takeProfit = null)
    {
        var response = await ExecuteOrderAsync(user, symbol, side, quantity, stopLoss: stopLoss, takeProfit: takeProfit);
        Assert.True(response.Success, $"the arranged order failed: {response}");
        return response;
    }

    public Task<Envelope> DepositAsync(Guid user, decimal amount) =>
        CallAsync(Maintenance, user, "SELECT trading.update_user_balance_and_margin(@amount, 0, 'deposit', true)::text", new { amount });

    /// <summary>A new trader with an account funded by one deposit.</summary>
    public async Task<Guid> NewTraderAsync(decimal deposit)
    {
        var user = Guid.NewGuid();
        var response = await DepositAsync(user, deposit);
        Assert.True(response.Success, $"the arranged deposit failed: {response}");
        return user;
    }

    public async Task UpsertAsync(params Instrument[] instruments)
    {
        var response = await CallAsync(Maintenance, null, "SELECT trading.upsert_instruments(@items::jsonb)::text", new { items = Instrument.ToJson(instruments) });
        Assert.True(response.Success, $"the arranged instruments were refused: {response}");
    }

    public async Task<Instrument> NewInstrumentAsync(decimal contractSize, decimal marginRate, decimal commissionRate, decimal? lastPrice)
    {
        var instrument = Instrument.New(contractSize, marginRate, commissionRate, lastPrice);
        await UpsertAsync(instrument);
        return instrument;
    }

    public Task<Envelope> RollbackAsync(Guid user, Guid orderId, string reason = "operator correction") =>
        CallAsync(Maintenance, user, "SELECT trading.rollback_order_execution(@orderId, @reason)::text", new { orderId, reason });

    public Task<Envelope> IntegrityAsync(Guid user, Guid transactionId) =>
        CallAsync(Api, user, "SELECT trading.validate_atomic_execution_integrity(@transactionId)::text", new { transactionId });

    // The risk engine, called as RiskEngine and the admin routes call it.

    /// <summary>PUT /api/admin/prices: sets the last prices and queues the risk engine's work, in one transaction.</summary>
    public Task<Envelope> SetPricesAsync(params (string Symbol, decimal Price)[] prices) =>
        CallAsync(Maintenance, null, "SELECT trading.set_prices(@prices::jsonb)::text",
            new { prices = System.Text.Json.JsonSerializer.Serialize(prices.Select(p => new { symbol = p.Symbol, price = p.Price })) });

    /// <summary>One batch of the risk engine.</summary>
    public Task<Envelope> ProcessRiskEventsAsync(decimal stopOutLevel = 0.5m, int limit = 500) =>
        CallAsync(Maintenance, null, "SELECT trading.process_risk_events(@stopOutLevel, @limit)::text", new { stopOutLevel, limit });

    /// <summary>Batches until the queue is empty, as RiskEngine.DrainAsync does; every batch must succeed. Returns the batches that did work.</summary>
    public async Task<IReadOnlyList<Envelope>> DrainAsync(decimal stopOutLevel = 0.5m, int limit = 500)
    {
        var batches = new List<Envelope>();
        for (var i = 0; ; i++)
        {
            Assert.True(i < 10_000, "the risk queue never emptied");
            var batch = await ProcessRiskEventsAsync(stopOutLevel, limit);
            Assert.True(batch.Success, $"a risk batch failed: {batch}");
            if (batch.Bool("done"))
            {
                return batches;
            }

            batches.Add(batch);
        }
    }

    public Task<Envelope> RiskBackstopAsync() => CallAsync(Maintenance, null, "SELECT trading.risk_backstop()::text");

    /// <summary>PATCH /api/positions/{id}: null with set = true clears a stop.</summary>
    public Task<Envelope> SetStopsAsync(Guid user, Guid positionId, decimal? stopLoss, decimal? takeProfit, bool setStopLoss = true, bool setTakeProfit = true) =>
        CallAsync(Api, user, "SELECT trading.set_position_stops(@positionId, @stopLoss, @takeProfit, @setStopLoss, @setTakeProfit)::text",
            new { positionId, stopLoss, takeProfit, setStopLoss, setTakeProfit });

    /// <summary>POST /api/admin/positions/sync.</summary>
    public Task<Envelope> SyncAsync(Guid user, object[] positions, object[]? closingPrices = null) =>
        CallAsync(Maintenance, user, "SELECT trading.sync_positions(@positions::jsonb, @closingPrices::jsonb)::text",
            new { positions = System.Text.Json.JsonSerializer.Serialize(positions), closingPrices = System.Text.Json.JsonSerializer.Serialize(closingPrices ?? []) });

    // Reads as admin.

    public async Task<T> AdminAsync<T>(Func<NpgsqlConnection, Task<T>> work)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        return await work(connection);
    }

    public Task<AccountRow?> AccountAsync(Guid user) => AdminAsync(c =>
        c.QuerySingleOrDefaultAsync<AccountRow>("SELECT * FROM trading.accounts WHERE user_id = @user", new { user }));

    public async Task<AccountRow> ExistingAccountAsync(Guid user) =>
        await AccountAsync(user) ?? throw new InvalidOperationException($"no account for {user}");

    public async Task<IReadOnlyList<PositionRow>> PositionsAsync(Guid user) => (await AdminAsync(c =>
        c.QueryAsync<PositionRow>("SELECT * FROM trading.positions WHERE user_id = @user ORDER BY opened_at, id", new { user }))).AsList();

    public async Task<PositionRow> PositionAsync(Guid user, Guid id) => await AdminAsync(c =>
        c.QuerySingleAsync<PositionRow>("SELECT * FROM trading.positions WHERE user_id = @user AND id = @id", new { user, id }));

    public async Task<IReadOnlyList<OrderRow>> OrdersAsync(Guid user) => (await AdminAsync(c =>
        c.QueryAsync<OrderRow>("SELECT *, response::text AS response FROM trading.orders WHERE user_id = @user ORDER BY created_at, id", new { user }))).AsList();

    public Task<OrderRow> OrderAsync(Guid user, Guid id) => AdminAsync(c =>
        c.QuerySingleAsync<OrderRow>("SELECT *, response::text AS response FROM trading.orders WHERE user_id = @user AND id = @id", new { user, id }));

    public async Task<IReadOnlyList<FillRow>> FillsAsync(Guid user) => (await AdminAsync(c =>
        c.QueryAsync<FillRow>("SELECT * FROM trading.fills WHERE user_id = @user ORDER BY filled_at, id", new { user }))).AsList();

    public async Task<IReadOnlyList<ExecutionLogRow>> ExecutionLogsAsync(Guid user) => (await AdminAsync(c =>
        c.QueryAsync<ExecutionLogRow>("SELECT * FROM trading.execution_logs WHERE user_id = @user ORDER BY seq", new { user }))).AsList();

    public async Task<IReadOnlyList<AuditRow>> AuditAsync(Guid user) => (await AdminAsync(c =>
        c.QueryAsync<AuditRow>("SELECT * FROM trading.balance_audit_log WHERE user_id = @user ORDER BY id", new { user }))).AsList();

    public async Task<IReadOnlyList<ErrorLogRow>> ErrorLogAsync(Guid user) => (await AdminAsync(c =>
        c.QueryAsync<ErrorLogRow>("SELECT * FROM trading.error_log WHERE user_id = @user ORDER BY id", new { user }))).AsList();

    public async Task<IReadOnlyList<WriteOffRow>> WriteOffsAsync(Guid user) => (await AdminAsync(c =>
        c.QueryAsync<WriteOffRow>("SELECT * FROM trading.write_offs WHERE user_id = @user ORDER BY id", new { user }))).AsList();

    public Task<RowCounts> CountsAsync(Guid user) => AdminAsync(c => c.QuerySingleAsync<RowCounts>(
        """
        SELECT (SELECT count(*) FROM trading.accounts WHERE user_id = @user) AS accounts,
               (SELECT count(*) FROM trading.orders WHERE user_id = @user) AS orders,
               (SELECT count(*) FROM trading.positions WHERE user_id = @user) AS positions,
               (SELECT count(*) FROM trading.fills WHERE user_id = @user) AS fills,
               (SELECT count(*) FROM trading.execution_logs WHERE user_id = @user) AS execution_logs,
               (SELECT count(*) FROM trading.balance_audit_log WHERE user_id = @user) AS balance_audit_log,
               (SELECT count(*) FROM trading.error_log WHERE user_id = @user) AS error_log,
               (SELECT count(*) FROM trading.write_offs WHERE user_id = @user) AS write_offs
        """, new { user }));

    /// <summary>The whole account row as jsonb text, less what every write bumps (version, updated_at).</summary>
    public Task<string> AccountSnapshotAsync(Guid user) => AdminAsync(c => c.QuerySingleAsync<string>(
        "SELECT (to_jsonb(a) - 'version' - 'updated_at')::text FROM trading.accounts a WHERE user_id = @user", new { user }));

    /// <summary>The whole position row as jsonb text, less what every write bumps (version, updated_at, last_transaction_id).</summary>
    public Task<string> PositionSnapshotAsync(Guid user, Guid id) => AdminAsync(c => c.QuerySingleAsync<string>(
        "SELECT (to_jsonb(p) - 'version' - 'updated_at' - 'last_transaction_id')::text FROM trading.positions p WHERE user_id = @user AND id = @id",
        new { user, id }));

    /// <summary>Every position of the trader, whole rows, as jsonb text.</summary>
    public Task<string> PositionsSnapshotAsync(Guid user) => AdminAsync(c => c.QuerySingleAsync<string>(
        "SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.opened_at, p.id), '[]')::text FROM trading.positions p WHERE user_id = @user",
        new { user }));
}
