using System.Globalization;
using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// The risk engine under real parallel callers, each call its own connection and transaction through the
/// application's login: price updates racing each other, traders' own closes and rollbacks, with risk batches
/// running alongside. Whatever the interleaving, no position is closed twice, none whose stop the prices crossed is
/// left open, no account stays below the stop-out level, and money is conserved, write-offs included.
/// </summary>
public sealed class RiskConcurrencyTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Price_updates_racing_each_other_close_every_crossed_position_exactly_once_at_a_crossing_price()
    {
        // Arrange: longs with stop_loss 95 / take_profit 105, shorts the mirror, and thinly funded positions without
        // stops that a stop-out takes: 10.1 buys 1 at 100 (margin 10, commission 0.1); at 94 (or a short at 106)
        // equity 4, level 0.4.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var deposits = new Dictionary<Guid, decimal>();
        var stopped = new List<(Guid User, Guid Position, string Side)>();
        for (var i = 0; i < 24; i++)
        {
            var side = i % 2 == 0 ? "buy" : "sell";
            var user = await NewTraderAsync(deposits, 1_000m);
            var opening = side == "buy"
                ? await _trading.ExecutedOrderAsync(user, instrument.Symbol, side, 1m, stopLoss: 95m, takeProfit: 105m)
                : await _trading.ExecutedOrderAsync(user, instrument.Symbol, side, 1m, stopLoss: 105m, takeProfit: 95m);
            stopped.Add((user, opening.Guid("position.id"), side));
        }

        for (var i = 0; i < 8; i++)
        {
            var user = await NewTraderAsync(deposits, 10.1m);
            await _trading.ExecutedOrderAsync(user, instrument.Symbol, i % 2 == 0 ? "buy" : "sell", 1m);
        }

        // Act: eight feeds alternate 94 and 106, while four workers run risk batches.
        var calls = new List<Func<Task<Envelope>>>();
        for (var feed = 0; feed < 8; feed++)
        {
            for (var tick = 0; tick < 5; tick++)
            {
                var price = (feed + tick) % 2 == 0 ? 94m : 106m;
                calls.Add(() => _trading.SetPricesAsync((instrument.Symbol, price)));
            }
        }

        for (var worker = 0; worker < 4; worker++)
        {
            for (var batch = 0; batch < 10; batch++)
            {
                calls.Add(() => _trading.ProcessRiskEventsAsync(limit: 5));
            }
        }

        var retries = await RaceAsync(calls);
        await _trading.DrainAsync();

        // Assert: each stopped position closed once, by a system order at a price that crosses the stop it names.
        Assert.Equal(0, retries.Deadlocks);
        foreach (var (user, position, side) in stopped)
        {
            var close = Assert.Single(await _trading.OrdersAsync(user), o => o.Source == "system");
            Assert.Equal(position, close.PositionId);
            Assert.Equal("executed", close.Status);
            var expected = (side, close.ExecutedPrice) switch
            {
                ("buy", 94m) or ("sell", 106m) => "stop_loss",
                ("buy", 106m) or ("sell", 94m) => "take_profit",
                _ => "a close at a price no feed sent",
            };
            Assert.Equal(expected, close.Type);
            Assert.Equal("closed", (await _trading.PositionAsync(user, position)).Status);
        }

        await AssertNothingLeftToCloseAsync(deposits.Keys);
        await AssertBooksBalanceAsync(deposits);
    }

    [Fact]
    public async Task Price_updates_racing_traders_own_closes_close_each_position_once()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var deposits = new Dictionary<Guid, decimal>();
        var positions = new List<(Guid User, Guid Position)>();
        for (var i = 0; i < 30; i++)
        {
            var user = await NewTraderAsync(deposits, 1_000m);
            positions.Add((user, (await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 2m, stopLoss: 95m)).Guid("position.id")));
        }

        // Act: every trader closes while feeds take the price through the stops and workers run batches.
        var calls = new List<Func<Task<Envelope>>>();
        calls.AddRange(positions.Select(p => (Func<Task<Envelope>>)(() => _trading.ExecuteOrderAsync(p.User, instrument.Symbol, "sell", 2m))));
        for (var feed = 0; feed < 6; feed++)
        {
            var price = feed % 2 == 0 ? 90m : 91m;
            calls.Add(() => _trading.SetPricesAsync((instrument.Symbol, price)));
        }

        for (var worker = 0; worker < 4; worker++)
        {
            for (var batch = 0; batch < 6; batch++)
            {
                calls.Add(() => _trading.ProcessRiskEventsAsync(limit: 4));
            }
        }

        var retries = await RaceAsync(calls);
        await _trading.DrainAsync();

        // Assert: the trader's sell and the stop never both closed one position. (A sell that came after the stop
        // is an order like any other: it opened a short.)
        Assert.Equal(0, retries.Deadlocks);
        foreach (var (user, position) in positions)
        {
            var orders = await _trading.OrdersAsync(user);
            var closes = orders.Where(o => o.Status == "executed" && o.PositionId == position && o.Side == "sell").ToList();
            var close = Assert.Single(closes);
            Assert.True(close.Source == "trader" || close.Type == "stop_loss", $"{close.Type} by {close.Source}");
            Assert.Equal("closed", (await _trading.PositionAsync(user, position)).Status);
            var sell = Assert.Single(orders, o => o.Source == "trader" && o.Side == "sell");
            Assert.Equal("executed", sell.Status);
        }

        await AssertNothingLeftToCloseAsync(deposits.Keys);
        await AssertBooksBalanceAsync(deposits);
    }

    [Fact]
    public async Task Price_updates_racing_rollbacks_of_system_closes_never_close_a_position_twice_and_conserve_written_off_money()
    {
        // Arrange: positions closed by their stops at 90; the thinly funded ones (10.1 for 1 at 100) with a write-off
        // (realized -10 and commission 0.09 against a balance of 10).
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var deposits = new Dictionary<Guid, decimal>();
        var positions = new List<(Guid User, Guid Position)>();
        for (var i = 0; i < 20; i++)
        {
            var user = await NewTraderAsync(deposits, i % 2 == 0 ? 10.1m : 1_000m);
            positions.Add((user, (await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m)).Guid("position.id")));
        }

        await _trading.SetPricesAsync((instrument.Symbol, 90m));
        await _trading.DrainAsync();
        var firstCloses = new List<(Guid User, Guid Order)>();
        foreach (var (user, _) in positions)
        {
            var stop = Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "stop_loss");
            firstCloses.Add((user, stop.Id));
        }

        Assert.Equal(10, (await Task.WhenAll(positions.Select(p => _trading.WriteOffsAsync(p.User)))).Count(w => w.Count == 1));

        // Act: an operator rolls every close back while the price keeps ticking below the stops and batches run.
        var calls = new List<Func<Task<Envelope>>>();
        calls.AddRange(firstCloses.Select(c => (Func<Task<Envelope>>)(() => _trading.RollbackAsync(c.User, c.Order, "disputed print"))));
        for (var feed = 0; feed < 8; feed++)
        {
            var price = feed % 2 == 0 ? 91m : 92m;
            calls.Add(() => _trading.SetPricesAsync((instrument.Symbol, price)));
        }

        for (var worker = 0; worker < 4; worker++)
        {
            for (var batch = 0; batch < 6; batch++)
            {
                calls.Add(() => _trading.ProcessRiskEventsAsync(limit: 3));
            }
        }

        var retries = await RaceAsync(calls);
        // The backstop finds what a rollback reopened after the last price had been queued.
        Assert.True((await _trading.RiskBackstopAsync()).Success);
        await _trading.DrainAsync();

        // Assert: every position stands closed by exactly one executed system order; a rolled-back close is the only other.
        Assert.Equal(0, retries.Deadlocks);
        foreach (var (user, position) in positions)
        {
            var closes = (await _trading.OrdersAsync(user)).Where(o => o.Source == "system").ToList();
            Assert.Single(closes, o => o.Status == "executed");
            Assert.True(closes.Count(o => o.Status == "rolled_back") <= 1);
            Assert.All(closes, o => Assert.Equal(position, o.PositionId));
            Assert.Equal("closed", (await _trading.PositionAsync(user, position)).Status);
        }

        await AssertNothingLeftToCloseAsync(deposits.Keys);
        await AssertBooksBalanceAsync(deposits);
    }

    private async Task<Guid> NewTraderAsync(Dictionary<Guid, decimal> deposits, decimal amount)
    {
        var user = await _trading.NewTraderAsync(amount);
        deposits.Add(user, amount);
        return user;
    }

    /// <summary>No open position has a stop crossed at today's price, and no account is below the stop-out level.</summary>
    private async Task AssertNothingLeftToCloseAsync(IEnumerable<Guid> users)
    {
        var crossed = await _trading.AdminAsync(c => c.ExecuteScalarAsync<long>(
            """
            SELECT count(*) FROM trading.positions p JOIN trading.instruments i ON i.symbol = p.symbol
            WHERE p.user_id = ANY(@users) AND p.status = 'open'
              AND ((p.side = 'long' AND (p.stop_loss >= i.last_price OR p.take_profit <= i.last_price))
                OR (p.side = 'short' AND (p.stop_loss <= i.last_price OR p.take_profit >= i.last_price)))
            """, new { users = users.ToArray() }));
        var below = await _trading.AdminAsync(c => c.ExecuteScalarAsync<long>(
            "SELECT count(*) FROM trading.accounts_below_margin_level(@users, 0.5)", new { users = users.ToArray() }));
        var queued = await _trading.AdminAsync(c => c.ExecuteScalarAsync<long>("SELECT count(*) FROM trading.risk_events"));
        Assert.Equal((0L, 0L, 0L), (crossed, below, queued));
    }

    /// <summary>
    /// Each balance is its deposit, less the commissions, plus the realized PnL and the write-offs of the orders that
    /// stand executed; the write-off entries net to those write-offs; and every check of the books passes.
    /// </summary>
    private async Task AssertBooksBalanceAsync(IReadOnlyDictionary<Guid, decimal> deposits)
    {
        var rows = await _trading.AdminAsync(async c => (await c.QueryAsync<(Guid User, decimal Balance, decimal Commissions, decimal Realized, decimal WriteOffs, decimal Entries)>(
            """
            SELECT a.user_id, a.balance,
                   coalesce((SELECT sum(o.commission) FROM trading.orders o WHERE o.user_id = a.user_id AND o.status = 'executed'), 0),
                   coalesce((SELECT sum(o.realized_pnl) FROM trading.orders o WHERE o.user_id = a.user_id AND o.status = 'executed'), 0),
                   coalesce((SELECT sum(o.write_off) FROM trading.orders o WHERE o.user_id = a.user_id AND o.status = 'executed'), 0),
                   coalesce((SELECT sum(w.amount) FROM trading.write_offs w WHERE w.user_id = a.user_id), 0)
            FROM trading.accounts a WHERE a.user_id = ANY(@users)
            """, new { users = deposits.Keys.ToArray() })).ToList());
        Assert.Equal(deposits.Count, rows.Count);
        foreach (var row in rows)
        {
            var expected = deposits[row.User] - row.Commissions + row.Realized + row.WriteOffs;
            Assert.True(row.Balance == expected, string.Create(CultureInfo.InvariantCulture,
                $"trader {row.User}: balance {row.Balance}, but deposit {deposits[row.User]} - commissions {row.Commissions} + realized {row.Realized} + written off {row.WriteOffs} = {expected}"));
            Assert.Equal(row.WriteOffs, row.Entries);
        }

        foreach (var check in new[] { "ledger_mismatches", "margin_mismatches", "balance_audit_chain_breaks", "execution_log_chain_breaks", "write_off_mismatches" })
        {
            foreach (var user in deposits.Keys)
            {
                Assert.Equal("[]", await _trading.RowsAsync($"trading.{check}(@user)", user));
            }
        }

        foreach (var user in deposits.Keys)
        {
            foreach (var order in await _trading.OrdersAsync(user))
            {
                foreach (var transaction in new[] { order.TransactionId, order.RollbackTransactionId }.OfType<Guid>())
                {
                    var integrity = await _trading.IntegrityAsync(user, transaction);
                    Assert.True(integrity.Bool("valid"), integrity.Json);
                }
            }
        }
    }

    /// <summary>
    /// Starts every call at once (each on its own connection, in its own transaction) in a shuffled order and waits
    /// for all. Deadlocks and serialization failures are retried, as the application does, and counted; any other
    /// failure, or an answer other than success, fails the test.
    /// </summary>
    private static async Task<RetryCounter> RaceAsync(List<Func<Task<Envelope>>> calls)
    {
        var retries = new RetryCounter();
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var shuffled = calls.OrderBy(_ => Random.Shared.Next()).ToList();
        var running = shuffled.Select(call => Task.Run(async () =>
        {
            await go.Task;
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    var response = await call();
                    Assert.True(response.Success, $"a racing call failed: {response}");
                    return;
                }
                catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure && attempt < 5)
                {
                    retries.Count(e.SqlState);
                }
            }
        })).ToList();
        go.SetResult();
        await Task.WhenAll(running);
        return retries;
    }
}
