using System.Globalization;
using Dapper;
using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Reliability.Tests.Support;

/// <summary>
/// The stored functions called the way OrdersDatabase calls them: the application's login, the role and the
/// acting trader set transaction-locally, then one function, all in ONE implicit transaction (one round trip).
/// Reads go through the admin connection, past row-level security.
/// </summary>
internal sealed class TradingDatabase : IAsyncDisposable
{
    public const string Api = "orders_api";
    public const string Maintenance = "orders_maintenance";

    private const string ContextSql = "SELECT set_config('role', @__role, true), set_config('app.user_id', @__user, true);\n";

    private readonly NpgsqlDataSource _app;
    private readonly NpgsqlDataSource _admin;

    public TradingDatabase(DatabaseFixture database)
    {
        _app = NpgsqlDataSource.Create(database.AppConnectionString);
        _admin = NpgsqlDataSource.Create(database.AdminConnectionString);
    }

    public ValueTask DisposeAsync()
    {
        _app.Dispose();
        return _admin.DisposeAsync();
    }

    /// <summary>One stored function that returns an envelope, in one transaction as <paramref name="role"/> for <paramref name="user"/>.</summary>
    public async Task<Envelope> CallAsync(string role, Guid? user, string sql, object? args)
    {
        var parameters = new DynamicParameters(args);
        parameters.Add("__role", role);
        parameters.Add("__user", user?.ToString() ?? "");
        await using var connection = await _app.OpenConnectionAsync();
        await using var grid = await connection.QueryMultipleAsync(ContextSql + sql, parameters);
        await grid.ReadAsync();
        return Envelope.Parse(await grid.ReadSingleAsync<string>());
    }

    public Task<Envelope> ExecuteOrderAsync(Guid user, string symbol, string side, string type, decimal quantity, decimal? limitPrice,
        string key, string fingerprint, decimal? stopLoss = null, decimal? takeProfit = null, bool reduceOnly = false) =>
        CallAsync(Api, user,
            "SELECT trading.execute_order(@symbol, @side, @type, @quantity, @limitPrice, @key, @fingerprint, NULL, @stopLoss, @takeProfit, @reduceOnly)::text",
            new { symbol, side, type, quantity, limitPrice, key, fingerprint, stopLoss, takeProfit, reduceOnly });

    /// <summary>PUT /api/admin/prices for one symbol.</summary>
    public Task<Envelope> SetPriceAsync(string symbol, decimal price) =>
        CallAsync(Maintenance, null, "SELECT trading.set_prices(jsonb_build_array(jsonb_build_object('symbol', @symbol::text, 'price', @price::numeric)))::text",
            new { symbol, price });

    /// <summary>PATCH /api/positions/{id}.</summary>
    public Task<Envelope> SetStopsAsync(Guid user, Guid positionId, bool setStopLoss, decimal? stopLoss, bool setTakeProfit, decimal? takeProfit) =>
        CallAsync(Api, user, "SELECT trading.set_position_stops(@positionId, @stopLoss, @takeProfit, @setStopLoss, @setTakeProfit)::text",
            new { positionId, stopLoss, takeProfit, setStopLoss, setTakeProfit });

    /// <summary>
    /// The risk engine's batches until the queue is empty, as RiskEngine.DrainAsync runs them, then until no work of
    /// these symbols is left: another caller's batch may hold it (SKIP LOCKED let this one pass it by), and waiting on
    /// its rows' locks (as admin) lets that batch commit first, without sleeping.
    /// </summary>
    public async Task DrainAsync(decimal stopOutLevel, int limit, string[] symbols)
    {
        while (true)
        {
            for (var i = 0; ; i++)
            {
                Assert.True(i < 10_000, "the risk queue never emptied");
                var batch = await CallAsync(Maintenance, null, "SELECT trading.process_risk_events(@stopOutLevel, @limit)::text", new { stopOutLevel, limit });
                Assert.True(batch.Success, $"a risk batch failed: {batch}");
                if (batch.Bool("done"))
                {
                    break;
                }
            }

            var left = await AdminAsync(async c =>
            {
                await using var transaction = await c.BeginTransactionAsync();
                var rows = await c.ExecuteScalarAsync<long>(new CommandDefinition(
                    "SELECT count(*) FROM (SELECT 1 FROM trading.risk_events WHERE symbol = ANY(@symbols) FOR UPDATE) x", new { symbols }, transaction));
                await transaction.CommitAsync();
                return rows;
            });
            if (left == 0)
            {
                return;
            }
        }
    }

    /// <summary>The trader's system orders (the risk engine's closes) in the order it made them: by execution-log sequence.</summary>
    public Task<List<SystemOrderRow>> SystemOrdersAsync(Guid user) => AdminAsync(async c => (await c.QueryAsync<SystemOrderRow>(
        """
        SELECT o.id, o.transaction_id, o.type, o.position_id, o.executed_price, o.commission, o.realized_pnl, o.write_off, o.balance_delta, o.margin_delta
        FROM trading.orders o
        JOIN trading.execution_logs l ON l.user_id = o.user_id AND l.order_id = o.id AND l.event IN ('STOP_LOSS', 'TAKE_PROFIT', 'LIQUIDATED')
        WHERE o.user_id = @user AND o.source = 'system'
        ORDER BY l.seq
        """, new { user })).ToList());

    public Task<Envelope> DepositAsync(Guid user, decimal amount) =>
        CallAsync(Maintenance, user, "SELECT trading.update_user_balance_and_margin(@amount, 0, 'deposit', true)::text", new { amount });

    public Task<Envelope> RollbackAsync(Guid user, Guid orderId, string reason) =>
        CallAsync(Maintenance, user, "SELECT trading.rollback_order_execution(@orderId, @reason)::text", new { orderId, reason });

    public Task<Envelope> UpsertInstrumentsAsync(string itemsJson) =>
        CallAsync(Maintenance, null, "SELECT trading.upsert_instruments(@items::jsonb)::text", new { items = itemsJson });

    public Task<Envelope> IntegrityAsync(Guid user, Guid transactionId) =>
        CallAsync(Api, user, "SELECT trading.validate_atomic_execution_integrity(@transactionId)::text", new { transactionId });

    public async Task<T> AdminAsync<T>(Func<NpgsqlConnection, Task<T>> work)
    {
        await using var connection = await _admin.OpenConnectionAsync();
        return await work(connection);
    }

    /// <summary>The trader's account, positions and orders, read in one round trip.</summary>
    public Task<TraderState> StateAsync(Guid user) => AdminAsync(async connection =>
    {
        const string sql = """
            SELECT balance, used_margin, realized_pnl,
                   (SELECT coalesce(sum(w.amount), 0) FROM trading.write_offs w WHERE w.user_id = @user) AS written_off
            FROM trading.accounts WHERE user_id = @user;
            SELECT id, symbol, side, status, quantity, avg_entry_price, used_margin, commission_paid, realized_pnl, version, stop_loss, take_profit
            FROM trading.positions WHERE user_id = @user;
            SELECT id, status, idempotency_key FROM trading.orders WHERE user_id = @user;
            """;
        await using var grid = await connection.QueryMultipleAsync(sql, new { user });
        var account = await grid.ReadSingleOrDefaultAsync<AccountRow>();
        var positions = (await grid.ReadAsync<PositionRow>()).ToDictionary(p => p.Id);
        var orders = (await grid.ReadAsync<OrderRow>()).ToDictionary(o => o.Id);
        return new TraderState(account, positions, orders);
    });

    /// <summary>
    /// The post-conditions every test ends with: each transaction's integrity check passes, both hash/audit chains
    /// verify, every account matches its ledger and its open positions' margin, and nothing is orphaned or stuck.
    /// </summary>
    public async Task AssertConsistentAsync(IEnumerable<(Guid User, Guid TransactionId)> transactions)
    {
        foreach (var (user, transactionId) in transactions)
        {
            var check = await IntegrityAsync(user, transactionId);
            Assert.True(check.Success && check.Data.GetProperty("valid").GetBoolean(),
                $"validate_atomic_execution_integrity({transactionId}) for trader {user} failed: {check.Json}");
        }

        const string sql = """
            SELECT 'write_off_mismatches', coalesce(jsonb_agg(to_jsonb(x)), '[]')::text FROM trading.write_off_mismatches() x
            UNION ALL SELECT 'execution_log_chain_breaks', coalesce(jsonb_agg(to_jsonb(x)), '[]')::text FROM trading.execution_log_chain_breaks() x
            UNION ALL SELECT 'balance_audit_chain_breaks', coalesce(jsonb_agg(to_jsonb(x)), '[]')::text FROM trading.balance_audit_chain_breaks() x
            UNION ALL SELECT 'ledger_mismatches', coalesce(jsonb_agg(to_jsonb(x)), '[]')::text FROM trading.ledger_mismatches() x
            UNION ALL SELECT 'margin_mismatches', coalesce(jsonb_agg(to_jsonb(x)), '[]')::text FROM trading.margin_mismatches() x
            UNION ALL SELECT 'orphan_rows', coalesce(jsonb_agg(to_jsonb(x)), '[]')::text FROM trading.orphan_rows() x
            UNION ALL SELECT 'unfinished_orders', coalesce(jsonb_agg(jsonb_build_object('user_id', o.user_id, 'id', o.id, 'status', o.status)), '[]')::text
                      FROM trading.orders o WHERE o.status IN ('pending', 'executing')
            """;
        // As orders_maintenance through the app's login: what the orphan scan itself would see.
        await using var connection = await _app.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync("SELECT set_config('role', @role, true)", new { role = Maintenance }, transaction);
        var findings = (await connection.QueryAsync<(string Check, string Rows)>(sql, transaction: transaction)).ToList();
        await transaction.CommitAsync();
        Assert.Equal(7, findings.Count);
        foreach (var (check, rows) in findings)
        {
            Assert.True(rows == "[]", $"{check} is not empty: {rows}");
        }
    }

    /// <summary>
    /// Money is conserved for each account: what was deposited, less the commissions, plus the realized PnL and the
    /// write-offs of the orders that stand executed, is the balance; the write-off ledger nets to those write-offs;
    /// used margin is the sum of its open positions' margin.
    /// </summary>
    public async Task AssertMoneyConservedAsync(IReadOnlyDictionary<Guid, decimal> deposits)
    {
        const string sql = """
            SELECT a.user_id, a.balance, a.used_margin, a.realized_pnl,
                   coalesce((SELECT sum(o.commission) FROM trading.orders o WHERE o.user_id = a.user_id AND o.status = 'executed'), 0) AS commissions,
                   coalesce((SELECT sum(o.realized_pnl) FROM trading.orders o WHERE o.user_id = a.user_id AND o.status = 'executed'), 0) AS realized,
                   coalesce((SELECT sum(o.write_off) FROM trading.orders o WHERE o.user_id = a.user_id AND o.status = 'executed'), 0) AS write_offs,
                   coalesce((SELECT sum(w.amount) FROM trading.write_offs w WHERE w.user_id = a.user_id), 0) AS written_off,
                   coalesce((SELECT sum(f.commission) FROM trading.fills f JOIN trading.orders o ON o.user_id = f.user_id AND o.id = f.order_id
                             WHERE f.user_id = a.user_id AND o.status = 'executed'), 0) AS fill_commissions,
                   coalesce((SELECT sum(p.used_margin) FROM trading.positions p WHERE p.user_id = a.user_id AND p.status = 'open'), 0) AS positions_margin
            FROM trading.accounts a
            WHERE a.user_id = ANY(@users)
            """;
        var rows = await AdminAsync(async c => (await c.QueryAsync<ConservationRow>(sql, new { users = deposits.Keys.ToArray() })).ToList());
        Assert.Equal(deposits.Count, rows.Count);
        foreach (var row in rows)
        {
            var expected = deposits[row.UserId] - row.Commissions + row.Realized + row.WriteOffs;
            Assert.True(row.Balance == expected,
                string.Create(CultureInfo.InvariantCulture,
                    $"trader {row.UserId}: balance {row.Balance} but deposits {deposits[row.UserId]} - commissions {row.Commissions} + realized {row.Realized} + written off {row.WriteOffs} = {expected}"));
            Assert.True(row.WriteOffs == row.WrittenOff, $"trader {row.UserId}: executed orders wrote off {row.WriteOffs}, the write-off ledger nets {row.WrittenOff}");
            Assert.True(row.Commissions == row.FillCommissions, $"trader {row.UserId}: orders' commissions {row.Commissions} differ from fills' {row.FillCommissions}");
            Assert.True(row.RealizedPnl == row.Realized, $"trader {row.UserId}: account realized_pnl {row.RealizedPnl} but executed orders realized {row.Realized}");
            Assert.True(row.UsedMargin == row.PositionsMargin, $"trader {row.UserId}: used_margin {row.UsedMargin} but open positions hold {row.PositionsMargin}");
        }
    }
}

internal sealed record AccountRow(decimal Balance, decimal UsedMargin, decimal RealizedPnl, decimal WrittenOff);

internal sealed record PositionRow(Guid Id, string Symbol, string Side, string Status, decimal Quantity, decimal AvgEntryPrice, decimal UsedMargin,
    decimal CommissionPaid, decimal RealizedPnl, long Version, decimal? StopLoss, decimal? TakeProfit);

internal sealed record SystemOrderRow(Guid Id, Guid TransactionId, string Type, Guid PositionId, decimal ExecutedPrice, decimal Commission, decimal RealizedPnl,
    decimal WriteOff, decimal BalanceDelta, decimal MarginDelta);

internal sealed record OrderRow(Guid Id, string Status, string IdempotencyKey);

internal sealed record TraderState(AccountRow? Account, IReadOnlyDictionary<Guid, PositionRow> Positions, IReadOnlyDictionary<Guid, OrderRow> Orders);

internal sealed record ConservationRow(Guid UserId, decimal Balance, decimal UsedMargin, decimal RealizedPnl, decimal Commissions, decimal Realized,
    decimal WriteOffs, decimal WrittenOff, decimal FillCommissions, decimal PositionsMargin);
