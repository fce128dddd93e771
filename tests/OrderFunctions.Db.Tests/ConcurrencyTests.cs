using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// Real parallel callers: each its own connection and transaction through the application's login, all released
/// at once after their transactions are open and their context is set.
/// </summary>
public sealed class ConcurrencyTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Parallel_orders_on_one_account_never_overdraw_and_conserve_money_exactly()
    {
        // Arrange: 100 of cash; each unit costs margin 10 and commission 0.1, so fewer than 10 units fit.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(100m);
        var requests = Enumerable.Range(0, 32)
            .Select(i => Trading.OrderParameters(instrument.Symbol, "buy", i % 3 + 1, "market", null, $"parallel-{i}", null))
            .ToList();

        // Act
        var responses = await InParallelAsync(requests.Select(r => (user, r)).ToList());

        // Assert: some executed, the rest rejected for margin, nothing else.
        var executed = responses.Where(r => r.Success).ToList();
        var rejected = responses.Where(r => !r.Success).ToList();
        Assert.NotEmpty(executed);
        Assert.NotEmpty(rejected);
        Assert.All(rejected, r => Assert.Equal("INSUFFICIENT_MARGIN", r.ErrorCode));

        var orders = await _trading.OrdersAsync(user);
        Assert.Equal(32, orders.Count);
        var executedOrders = orders.Where(o => o.Status == "executed").ToList();
        Assert.Equal(executed.Count, executedOrders.Count);

        var account = await _trading.ExistingAccountAsync(user);
        Assert.True(account.Balance >= 0 && account.UsedMargin >= 0, $"balance {account.Balance}, used margin {account.UsedMargin}");
        Assert.True(account.Balance - account.UsedMargin >= 0, $"free margin went negative: {account.Balance - account.UsedMargin}");
        Assert.Equal(100m - executedOrders.Sum(o => o.Commission!.Value), account.Balance);
        Assert.Equal(executedOrders.Sum(o => o.Quantity) * 10m, account.UsedMargin);
        var positions = await _trading.PositionsAsync(user);
        Assert.Equal(account.UsedMargin, positions.Where(p => p.Status == "open").Sum(p => p.UsedMargin));
        Assert.Equal(executedOrders.Sum(o => o.Quantity), Assert.Single(positions).Quantity);

        // Every change audited and chained, every log row chained.
        var audit = await _trading.AuditAsync(user);
        Assert.Equal(1 + executedOrders.Count, audit.Count);
        Assert.Equal("[]", await _trading.RowsAsync("trading.balance_audit_chain_breaks(@user)", user));
        Assert.Equal("[]", await _trading.RowsAsync("trading.execution_log_chain_breaks(@user)", user));
        Assert.Equal("[]", await _trading.RowsAsync("trading.ledger_mismatches(@user)", user));
    }

    [Fact]
    public async Task Parallel_requests_with_one_idempotency_key_create_exactly_one_order()
    {
        // Arrange
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var request = Trading.OrderParameters(instrument.Symbol, "buy", 1m, "market", null, "one-key", null);

        // Act
        var responses = await InParallelAsync(Enumerable.Repeat((user, request), 50).ToList());

        // Assert
        Assert.All(responses, r => Assert.True(r.Success, r.Json));
        Assert.Single(responses.Select(r => r.Guid("order_id")).Distinct());
        Assert.Single(responses.Select(r => r.Data.GetRawText()).Distinct());
        Assert.Single(responses, r => !r.Replayed);
        Assert.Single(await _trading.OrdersAsync(user));
        Assert.Single(await _trading.FillsAsync(user));
        Assert.Equal(10_000m - 0.1m, (await _trading.ExistingAccountAsync(user)).Balance);
    }

    [Fact]
    public async Task Parallel_orders_in_opposite_directions_on_two_accounts_never_deadlock()
    {
        // Arrange: two traders on two instruments; each trader alternates buys and sells on both, the other the opposite way.
        var first = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var second = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 50m);
        var a = await _trading.NewTraderAsync(1_000_000m);
        var b = await _trading.NewTraderAsync(1_000_000m);
        var requests = new List<(Guid, object)>();
        for (var i = 0; i < 12; i++)
        {
            foreach (var symbol in new[] { first.Symbol, second.Symbol })
            {
                var side = (i + (symbol == first.Symbol ? 0 : 1)) % 2 == 0 ? "buy" : "sell";
                requests.Add((a, Trading.OrderParameters(symbol, side, i % 4 + 1, "market", null, $"a-{symbol}-{i}", null)));
                requests.Add((b, Trading.OrderParameters(symbol, side == "buy" ? "sell" : "buy", i % 4 + 1, "market", null, $"b-{symbol}-{i}", null)));
            }
        }

        // Act
        var retries = new RetryCounter();
        var responses = await InParallelAsync(requests, retries);

        // Assert
        Assert.All(responses, r => Assert.True(r.Success, r.Json));
        Assert.Equal(0, retries.Deadlocks);
        Assert.True(retries.SerializationFailures <= requests.Count, $"{retries.SerializationFailures} serialization retries");
        foreach (var trader in new[] { a, b })
        {
            var orders = await _trading.OrdersAsync(trader);
            Assert.Equal(24, orders.Count(o => o.Status == "executed"));
            var account = await _trading.ExistingAccountAsync(trader);
            Assert.Equal(1_000_000m + orders.Sum(o => o.BalanceDelta!.Value), account.Balance);
            Assert.Equal(orders.Sum(o => o.MarginDelta!.Value), account.UsedMargin);
            Assert.Equal("[]", await _trading.RowsAsync("trading.ledger_mismatches(@user)", trader));
            Assert.Equal("[]", await _trading.RowsAsync("trading.margin_mismatches(@user)", trader));
        }
    }

    /// <summary>
    /// Opens one connection and transaction per request and sets its context, then releases every call at once.
    /// Deadlocks and serialization failures are retried as the application does (bounded) and counted.
    /// </summary>
    private async Task<List<Envelope>> InParallelAsync(List<(Guid User, object Request)> requests, RetryCounter? retries = null)
    {
        const int maxAttempts = 5;
        using var ready = new CountdownEvent(requests.Count);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task<Envelope> CallAsync(Guid user, object request)
        {
            for (var attempt = 1; ; attempt++)
            {
                await using var connection = new NpgsqlConnection(database.AppConnectionString);
                await connection.OpenAsync();
                await using var transaction = await connection.BeginTransactionAsync();
                await Trading.SetContextAsync(connection, transaction, Trading.Api, user);
                if (attempt == 1)
                {
                    ready.Signal();
                    await go.Task;
                }

                try
                {
                    var json = await connection.QuerySingleAsync<string>(new CommandDefinition(Trading.ExecuteOrderSql, request, transaction));
                    await transaction.CommitAsync();
                    return Envelope.Parse(json);
                }
                catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure && attempt < maxAttempts)
                {
                    retries?.Count(e.SqlState);
                    if (retries is null)
                    {
                        throw;
                    }
                }
            }
        }

        var calls = requests.Select(r => Task.Run(() => CallAsync(r.User, r.Request))).ToList();
        // Every transaction is open before any call starts; a call that failed to get there fails the wait.
        var allReady = Task.Run(() => ready.Wait(TimeSpan.FromSeconds(60)));
        var first = await Task.WhenAny(allReady, Task.WhenAll(calls));
        Assert.True(first == allReady && allReady.Result, "not every caller opened its transaction");
        go.SetResult();
        return (await Task.WhenAll(calls)).ToList();
    }
}
