using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// The risk engine (R__12) as the app drives it: a price update queues its work (set_prices), batches of
/// process_risk_events close what it calls for. Money is worked out by hand: contract size 1, margin 10 %,
/// commission 0.1 % unless a test says otherwise.
/// </summary>
public sealed class RiskEngineTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task A_price_through_a_stop_loss_closes_the_position_at_that_price_with_a_system_order_fill_audit_row_and_log()
    {
        // Arrange: long 50 at 100 with stop_loss 90 and take_profit 110: balance 995, margin 500.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 50m, stopLoss: 90m, takeProfit: 110m);
        var positionId = opening.Guid("position.id");

        // Act: the price moves to 85.
        var set = await _trading.SetPricesAsync((instrument.Symbol, 85m));
        var batches = await _trading.DrainAsync();

        // Assert: queued in the price's transaction, closed by the first batch at 85 (not at the stop: the market was at 85).
        Assert.True(set.Success, set.Json);
        Assert.Equal((1, 0, 1), ((int)set.Decimal("queued.stop_loss"), (int)set.Decimal("queued.take_profit"), (int)set.Decimal("queued.margin_checks")));
        Assert.Equal(1, batches.Sum(b => (int)b.Decimal("closed.stop_loss")));
        var stop = Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "stop_loss");
        Assert.Equal(("system", "sell", "executed", 50m, 85m), (stop.Source, stop.Side, stop.Status, stop.Quantity, stop.ExecutedPrice));
        // realized (85 - 100) x 50 = -750; commission 50 x 85 x 0.1 % = 4.25.
        Assert.Equal((-750m, 4.25m, -754.25m, -500m, 0m), (stop.RealizedPnl, stop.Commission, stop.BalanceDelta, stop.MarginDelta, stop.WriteOff));
        Assert.Equal(positionId, stop.PositionId);

        var fill = Assert.Single(await _trading.FillsAsync(user), f => f.OrderId == stop.Id);
        Assert.Equal(("sell", 50m, 85m, 4.25m, -750m), (fill.Side, fill.Quantity, fill.Price, fill.Commission, fill.RealizedPnl));
        var position = await _trading.PositionAsync(user, positionId);
        Assert.Equal(("closed", 0m, 0m, -750m), (position.Status, position.Quantity, position.UsedMargin, position.RealizedPnl));
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((240.75m, 0m, -750m), (account.Balance, account.UsedMargin, account.RealizedPnl));

        var log = (await _trading.ExecutionLogsAsync(user))[^1];
        Assert.Equal(("STOP_LOSS", stop.Id, "stop_loss 90 crossed at 85"), (log.Event, log.OrderId, log.Reason));
        var audit = (await _trading.AuditAsync(user))[^1];
        Assert.Equal(("stop_loss", stop.Id, stop.TransactionId), (audit.Reason, audit.OrderId!.Value, audit.TransactionId!.Value));
        Assert.Equal((995m, 240.75m, 500m, 0m), (audit.BalanceBefore, audit.BalanceAfter, audit.MarginBefore, audit.MarginAfter));
        Assert.Equal((245m, 240.75m), (audit.EquityBefore, audit.EquityAfter));

        var integrity = await _trading.IntegrityAsync(user, stop.TransactionId);
        Assert.True(integrity.Bool("valid"), integrity.Json);
        Assert.Equal(0, await QueuedAsync());
    }

    [Fact]
    public async Task A_price_at_a_shorts_take_profit_closes_it_as_take_profit()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 10m, stopLoss: 105m, takeProfit: 90m);

        await _trading.SetPricesAsync((instrument.Symbol, 90m));
        await _trading.DrainAsync();

        var close = Assert.Single(await _trading.OrdersAsync(user), o => o.Source == "system");
        // realized (100 - 90) x 10 = 100; commission 10 x 90 x 0.1 % = 0.9.
        Assert.Equal(("take_profit", "buy", 90m, 100m, 0.9m), (close.Type, close.Side, close.ExecutedPrice, close.RealizedPnl, close.Commission));
        Assert.Equal("TAKE_PROFIT", (await _trading.ExecutionLogsAsync(user))[^1].Event);
        Assert.Equal("take_profit", (await _trading.AuditAsync(user))[^1].Reason);
        Assert.True((await _trading.IntegrityAsync(user, close.TransactionId)).Bool("valid"));
    }

    [Fact]
    public async Task A_price_short_of_the_stops_closes_nothing()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m, takeProfit: 105m);
        var before = await _trading.PositionsSnapshotAsync(user);

        await _trading.SetPricesAsync((instrument.Symbol, 95.01m));
        await _trading.SetPricesAsync((instrument.Symbol, 104.99m));
        await _trading.DrainAsync();

        Assert.Equal(before, await _trading.PositionsSnapshotAsync(user));
        Assert.DoesNotContain(await _trading.OrdersAsync(user), o => o.Source == "system");
        Assert.Equal(0, await QueuedAsync());
    }

    [Fact]
    public async Task A_halted_instrument_fills_no_stop_until_it_trades_again_and_then_at_its_price()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m);

        await _trading.UpsertAsync(instrument with { LastPrice = 90m, Tradable = false });
        await _trading.DrainAsync();
        var halted = await _trading.OrdersAsync(user);
        await _trading.UpsertAsync(instrument with { LastPrice = null, Tradable = true });
        await _trading.DrainAsync();

        Assert.DoesNotContain(halted, o => o.Source == "system");
        var close = Assert.Single(await _trading.OrdersAsync(user), o => o.Source == "system");
        Assert.Equal(("stop_loss", 90m), (close.Type, close.ExecutedPrice));
    }

    [Fact]
    public async Task Two_prices_through_a_stop_before_a_batch_runs_close_it_once_at_the_first()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m);

        var first = await _trading.SetPricesAsync((instrument.Symbol, 90m));
        var second = await _trading.SetPricesAsync((instrument.Symbol, 80m));
        await _trading.DrainAsync();
        await _trading.DrainAsync();

        Assert.Equal(1, (int)first.Decimal("queued.stop_loss"));
        Assert.Equal(0, (int)second.Decimal("queued.stop_loss"));
        var close = Assert.Single(await _trading.OrdersAsync(user), o => o.Source == "system");
        Assert.Equal(90m, close.ExecutedPrice);
    }

    [Fact]
    public async Task A_stop_moved_after_a_price_crossed_it_is_judged_as_it_stands_when_the_batch_runs()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m);
        await _trading.SetPricesAsync((instrument.Symbol, 90m));

        // Before the batch, the trader moves the stop below the price (valid against today's price, 90).
        var moved = await _trading.SetStopsAsync(user, opening.Guid("position.id"), 85m, null, setTakeProfit: false);
        await _trading.DrainAsync();

        Assert.True(moved.Success, moved.Json);
        Assert.Equal("open", (await _trading.PositionAsync(user, opening.Guid("position.id"))).Status);
        Assert.DoesNotContain(await _trading.OrdersAsync(user), o => o.Source == "system");
    }

    [Fact]
    public async Task Each_batch_closes_at_most_its_limit_and_every_crossed_stop_is_closed_once()
    {
        // Arrange: five traders long 1 with stop_loss 95.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var users = new List<Guid>();
        for (var i = 0; i < 5; i++)
        {
            var user = await _trading.NewTraderAsync(1_000m);
            await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m);
            users.Add(user);
        }

        // Act
        await _trading.SetPricesAsync((instrument.Symbol, 90m));
        var batches = await _trading.DrainAsync(limit: 2);

        // Assert: 2 + 2 + 1 closes, then the symbol's margin check (nobody holds it any more).
        Assert.Equal([2, 2, 1, 0], batches.Select(b => (int)b.Decimal("closed.stop_loss")));
        foreach (var user in users)
        {
            Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "stop_loss" && o.Status == "executed");
        }
    }

    [Fact]
    public async Task Stop_out_liquidates_the_largest_loss_first_until_the_margin_level_is_back_at_the_stop_out_level()
    {
        // Arrange: no commission; deposit 1000; long 30 of A, 20 of B, 10 of C, all at 100: margin 300 + 200 + 100.
        var a = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var b = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var c = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var positionA = (await _trading.ExecutedOrderAsync(user, a.Symbol, "buy", 30m)).Guid("position.id");
        var positionB = (await _trading.ExecutedOrderAsync(user, b.Symbol, "buy", 20m)).Guid("position.id");
        var positionC = (await _trading.ExecutedOrderAsync(user, c.Symbol, "buy", 10m)).Guid("position.id");

        // A at 80: equity 1000 - 600 = 400, level 400 / 600 = 0.67: above the stop-out level 0.5, nothing closes.
        await _trading.SetPricesAsync((a.Symbol, 80m));
        await _trading.DrainAsync();
        Assert.DoesNotContain(await _trading.OrdersAsync(user), o => o.Source == "system");

        // Act: B at 85: equity 400 - 300 = 100, level 100 / 600 = 0.17.
        await _trading.SetPricesAsync((b.Symbol, 85m));
        await _trading.DrainAsync();

        // Assert: A (-600) goes first: level (400 - 300) / 300 = 0.33, still below; then B (-300): level 100 / 100 = 1. C stays.
        // (Both close in one transaction, so the execution log's sequence, not the orders' timestamps, says which came first.)
        var orders = (await _trading.OrdersAsync(user)).ToDictionary(o => o.Id);
        var logs = (await _trading.ExecutionLogsAsync(user)).Where(l => l.Event == "LIQUIDATED").ToList();
        var liquidations = logs.Select(l => orders[l.OrderId]).ToList();
        Assert.Equal([positionA, positionB], liquidations.Select(o => o.PositionId!.Value));
        Assert.Equal([80m, 85m], liquidations.Select(o => o.ExecutedPrice!.Value));
        Assert.Equal(2, orders.Values.Count(o => o.Type == "liquidation"));
        Assert.Equal("open", (await _trading.PositionAsync(user, positionC)).Status);
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((100m, 100m), (account.Balance, account.UsedMargin));
        Assert.StartsWith("stop-out: margin level below 0.5", logs[^1].Reason, StringComparison.Ordinal);
        Assert.All(liquidations, o => Assert.Equal("system", o.Source));
        foreach (var o in liquidations)
        {
            Assert.True((await _trading.IntegrityAsync(user, o.TransactionId)).Bool("valid"));
        }
    }

    [Fact]
    public async Task A_stop_out_past_the_balance_writes_off_the_shortfall_and_leaves_equity_at_zero()
    {
        // The report's account: 50 at 100, no stops; the price gaps to 70: equity -505, level -1.01.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 50m);

        await _trading.SetPricesAsync((instrument.Symbol, 70m));
        var batches = await _trading.DrainAsync();

        // Liquidated at 70: realized -1500, commission 3.5, against 995: 508.5 written off.
        Assert.Equal(1, batches.Sum(x => (int)x.Decimal("closed.liquidation")));
        Assert.Equal(508.5m, batches.Sum(x => x.Decimal("written_off")));
        var liquidation = Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "liquidation");
        Assert.Equal((70m, -1_500m, 3.5m, 508.5m, -995m), (liquidation.ExecutedPrice, liquidation.RealizedPnl, liquidation.Commission, liquidation.WriteOff, liquidation.BalanceDelta));
        var writeOff = Assert.Single(await _trading.WriteOffsAsync(user));
        Assert.Equal((liquidation.Id, liquidation.TransactionId, 508.5m), (writeOff.OrderId!.Value, writeOff.TransactionId, writeOff.Amount));
        var audit = (await _trading.AuditAsync(user))[^1];
        Assert.Equal(("liquidation", 995m, 0m, -505m, 0m), (audit.Reason, audit.BalanceBefore, audit.BalanceAfter, audit.EquityBefore, audit.EquityAfter));
        Assert.Equal((0m, 0m), ((await _trading.ExistingAccountAsync(user)).Balance, (await _trading.ExistingAccountAsync(user)).UsedMargin));
        Assert.True((await _trading.IntegrityAsync(user, liquidation.TransactionId)).Bool("valid"));
    }

    [Fact]
    public async Task A_margin_check_waits_for_a_stop_another_batch_is_closing_and_the_position_closes_at_its_stop_not_as_a_liquidation()
    {
        // Long 50 at 100 with stop_loss 90 (margin 500, no commission); the price gaps to 70: the stop is crossed
        // and the account is below the stop-out level (equity -500), so the price queues the stop and a margin check.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var positionId = (await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 50m, stopLoss: 90m)).Guid("position.id");
        await _trading.SetPricesAsync((instrument.Symbol, 70m));

        // Another batch has taken the stop (it holds its row, as a batch does until it commits) ...
        await using var other = await database.OpenAdminConnectionAsync();
        await using var holding = await other.BeginTransactionAsync();
        Assert.Equal(1, await other.ExecuteScalarAsync<int>(new CommandDefinition(
            "SELECT count(*) FROM (SELECT 1 FROM trading.risk_events WHERE user_id = @user AND kind = 'stop_loss' FOR UPDATE) x", new { user }, holding)));

        // ... so this batch, passing it by (SKIP LOCKED), takes the margin check: it must wait for the stop, not liquidate.
        var check = _trading.ProcessRiskEventsAsync();
        await database.WaitUntilWaitingOnALockAsync("process_risk_events", check);
        Assert.DoesNotContain(await _trading.OrdersAsync(user), o => o.Source == "system");

        // The other batch gives the stop back undone: the waiting check closes it first, at the price that crossed it.
        await holding.RollbackAsync();
        var batch = await check;

        Assert.True(batch.Success, batch.Json);
        Assert.Equal((1, 0), ((int)batch.Decimal("closed.stop_loss"), (int)batch.Decimal("closed.liquidation")));
        var close = Assert.Single(await _trading.OrdersAsync(user), o => o.Source == "system");
        Assert.Equal(("stop_loss", positionId, 70m, 500m), (close.Type, close.PositionId!.Value, close.ExecutedPrice!.Value, close.WriteOff));
        Assert.Equal(0, await QueuedAsync());
    }

    [Fact]
    public async Task A_close_that_keeps_failing_is_retried_alone_then_later_and_the_rest_of_the_queue_goes_on()
    {
        // Two traders long 10 at 100 with stop_loss 90; every order of one of them is refused (a trigger standing in
        // for whatever makes a close fail: bad data on one account, a bug).
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var poisoned = await _trading.NewTraderAsync(1_000m);
        var healthy = await _trading.NewTraderAsync(1_000m);
        var poisonedPosition = (await _trading.ExecutedOrderAsync(poisoned, instrument.Symbol, "buy", 10m, stopLoss: 90m)).Guid("position.id");
        var healthyPosition = (await _trading.ExecutedOrderAsync(healthy, instrument.Symbol, "buy", 10m, stopLoss: 90m)).Guid("position.id");
        var refusal = await database.RefuseOrdersOfAsync(poisoned);
        try
        {
            await _trading.SetPricesAsync((instrument.Symbol, 85m));

            // The first batch takes both stops and fails: both are retried one at a time, at once.
            var first = await _trading.ProcessRiskEventsAsync();
            Assert.Equal(("INTERNAL_ERROR", "a risk batch of 2 events failed; they are retried one at a time"), (first.ErrorCode, first.ErrorMessage));
            // Then: the healthy stop closes, the poisoned one fails alone and waits, the margin check runs, and the queue
            // answers done with the failing close still in it.
            var batches = new List<Envelope>();
            for (var next = await _trading.ProcessRiskEventsAsync(); !(next.Success && next.Bool("done")); next = await _trading.ProcessRiskEventsAsync())
            {
                Assert.True(batches.Count < 10, "the queue never answered done");
                batches.Add(next);
            }

            // (The two stops are queued in key order, so which of them goes first depends on the ids.)
            Assert.Equal(2, batches.Count(b => b.Success));
            Assert.Equal("a risk event failed; it is retried later and the rest of the queue goes on", Assert.Single(batches, b => !b.Success).ErrorMessage);
            Assert.Equal(("closed", "stop_loss"), ((await _trading.PositionAsync(healthy, healthyPosition)).Status,
                (await _trading.OrdersAsync(healthy)).Single(o => o.Source == "system").Type));
            Assert.Equal("open", (await _trading.PositionAsync(poisoned, poisonedPosition)).Status);
            var waiting = await _trading.AdminAsync(c => c.QuerySingleAsync<(long Id, int Attempts, double WaitSeconds)>(
                "SELECT id, attempts, extract(epoch FROM retry_at - now())::float8 FROM trading.risk_events WHERE user_id = @poisoned", new { poisoned }));
            // Its second failure (the first was its batch's): 2 minutes.
            Assert.Equal(2, waiting.Attempts);
            Assert.InRange(waiting.WaitSeconds, 110, 120);
            Assert.Equal(2, await database.AdminScalarAsync<long>(
                "SELECT count(*) FROM trading.error_log WHERE context ->> 'function' = 'process_risk_events' AND context -> 'events' @> to_jsonb($1)",
                waiting.Id));

            // However often it has failed, it waits at most an hour.
            await database.AdminExecuteAsync("UPDATE trading.risk_events SET attempts = 1000, retry_at = now() - interval '1 second' WHERE id = $1", waiting.Id);
            Assert.False((await _trading.ProcessRiskEventsAsync()).Success);
            var capped = await _trading.AdminAsync(c => c.QuerySingleAsync<(int Attempts, double WaitSeconds)>(
                "SELECT attempts, extract(epoch FROM retry_at - now())::float8 FROM trading.risk_events WHERE id = @Id", new { waiting.Id }));
            Assert.Equal(1001, capped.Attempts);
            Assert.InRange(capped.WaitSeconds, 3500, 3600);

            // Fixed, and its time come: it closes at the price that crossed its stop.
            await refusal.DisposeAsync();
            await database.AdminExecuteAsync("UPDATE trading.risk_events SET retry_at = now() - interval '1 second' WHERE id = $1", waiting.Id);
            await _trading.DrainAsync();

            var close = Assert.Single(await _trading.OrdersAsync(poisoned), o => o.Source == "system");
            Assert.Equal(("stop_loss", poisonedPosition, 85m), (close.Type, close.PositionId!.Value, close.ExecutedPrice!.Value));
            Assert.Equal(0, await QueuedAsync());
        }
        finally
        {
            await refusal.DisposeAsync();
            await database.AdminExecuteAsync("DELETE FROM trading.risk_events WHERE user_id = $1", poisoned);
        }
    }

    [Fact]
    public async Task A_price_that_comes_while_a_batch_checks_its_symbol_queues_a_check_of_its_own()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 10m);
        await _trading.SetPricesAsync((instrument.Symbol, 99m));

        // A batch is checking the symbol: it holds the queued check, as process_risk_events does until it commits,
        // and deletes it when it is done.
        await using var other = await database.OpenAdminConnectionAsync();
        await using var checking = await other.BeginTransactionAsync();
        var checkId = await other.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT id FROM trading.risk_events WHERE symbol = @Symbol AND kind = 'price_moved' FOR UPDATE", new { instrument.Symbol }, checking));

        // A new price meanwhile waits for that batch, then queues its own check instead of vanishing with the old one.
        var price = _trading.SetPricesAsync((instrument.Symbol, 98m));
        await database.WaitUntilWaitingOnALockAsync("set_prices", price);
        await other.ExecuteAsync(new CommandDefinition("DELETE FROM trading.risk_events WHERE id = @checkId", new { checkId }, checking));
        await checking.CommitAsync();
        var set = await price;

        Assert.True(set.Success, set.Json);
        Assert.Equal(1, (int)set.Decimal("queued.margin_checks"));
        Assert.Equal(1, await QueuedAsync());
        await _trading.DrainAsync();
        Assert.Equal(0, await QueuedAsync());
    }

    [Fact]
    public async Task A_margin_check_of_more_accounts_than_a_batch_takes_stays_queued_until_all_are_checked()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var users = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            var user = await _trading.NewTraderAsync(100m);
            await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 10m);
            users.Add(user);
        }

        // 10 at 100 on 100 of cash: at 95 equity 50, level 50 / 100 = 0.5 (not below); at 94.99 below.
        await _trading.SetPricesAsync((instrument.Symbol, 95m));
        var atTheLevel = await _trading.DrainAsync(limit: 2);
        await _trading.SetPricesAsync((instrument.Symbol, 94.99m));
        var below = await _trading.DrainAsync(limit: 2);

        Assert.Equal(0, atTheLevel.Sum(x => (int)x.Decimal("closed.liquidation")));
        Assert.Equal([2, 1], below.Select(x => (int)x.Decimal("closed.liquidation")));
        Assert.Equal([0, 1], below.Select(x => (int)x.Decimal("events")));
        foreach (var user in users)
        {
            Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "liquidation");
        }
    }

    [Fact]
    public async Task A_margin_check_of_accounts_with_nothing_it_may_close_ends_and_closes_nothing()
    {
        // Two accounts below the stop-out level at 90, then the instrument is halted before the check runs.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0m, 100m);
        var users = new List<Guid>();
        for (var i = 0; i < 2; i++)
        {
            var user = await _trading.NewTraderAsync(100m);
            await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 10m);
            users.Add(user);
        }

        await _trading.SetPricesAsync((instrument.Symbol, 90m));
        await _trading.UpsertAsync(instrument with { LastPrice = null, Tradable = false });

        var batches = await _trading.DrainAsync(limit: 1);

        Assert.Equal(0, batches.Sum(b => (int)b.Decimal("closed.liquidation")));
        Assert.Equal(0, await QueuedAsync());
        foreach (var user in users)
        {
            Assert.DoesNotContain(await _trading.OrdersAsync(user), o => o.Source == "system");
        }
    }

    [Fact]
    public async Task Rollback_of_a_stop_loss_reopens_the_position_exactly_and_a_later_price_closes_it_again()
    {
        // Arrange: closed by its stop at 90.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 5m, stopLoss: 95m, takeProfit: 120m);
        var positionId = opening.Guid("position.id");
        var openAccount = await _trading.AccountSnapshotAsync(user);
        var openPosition = await _trading.PositionSnapshotAsync(user, positionId);
        await _trading.SetPricesAsync((instrument.Symbol, 90m));
        await _trading.DrainAsync();
        var stop = Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "stop_loss");

        // Act
        var rollback = await _trading.RollbackAsync(user, stop.Id, "bad tick");

        // Assert: account and position (stops included) as before the close, the close rolled back and consistent.
        Assert.True(rollback.Success, rollback.Json);
        Assert.Equal(openAccount, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(openPosition, await _trading.PositionSnapshotAsync(user, positionId));
        Assert.Equal("rolled_back", (await _trading.OrderAsync(user, stop.Id)).Status);
        Assert.True((await _trading.IntegrityAsync(user, stop.TransactionId)).Bool("valid"));
        Assert.True((await _trading.IntegrityAsync(user, rollback.Guid("transaction_id"))).Bool("valid"));

        // and the next price through the stop closes it again, once, at that price.
        await _trading.SetPricesAsync((instrument.Symbol, 89m));
        await _trading.DrainAsync();
        var closes = (await _trading.OrdersAsync(user)).Where(o => o.Type == "stop_loss").ToList();
        Assert.Equal([("rolled_back", 90m), ("executed", 89m)], closes.Select(o => (o.Status, o.ExecutedPrice!.Value)));
    }

    [Fact]
    public async Task Rollback_of_a_liquidation_with_a_write_off_reverses_the_write_off()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 50m);
        await _trading.SetPricesAsync((instrument.Symbol, 70m));
        await _trading.DrainAsync();
        var liquidation = Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "liquidation");

        var rollback = await _trading.RollbackAsync(user, liquidation.Id, "disputed print");

        Assert.True(rollback.Success, rollback.Json);
        Assert.Equal(-508.5m, rollback.Decimal("write_off"));
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((995m, 500m, 0m), (account.Balance, account.UsedMargin, account.RealizedPnl));
        Assert.Equal([("negative_balance", 508.5m), ("order_rolled_back", -508.5m)],
            (await _trading.WriteOffsAsync(user)).Select(w => (w.Reason, w.Amount)));
        Assert.Equal("[]", await _trading.RowsAsync("trading.write_off_mismatches(@user)", user));
        Assert.True((await _trading.IntegrityAsync(user, rollback.Guid("transaction_id"))).Bool("valid"));
    }

    [Fact]
    public async Task The_backstop_closes_what_no_price_update_acted_on()
    {
        // A stop crossed while no price moved: the close rolled back at 90, with the price still at 90.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m);
        await _trading.SetPricesAsync((instrument.Symbol, 90m));
        await _trading.DrainAsync();
        var stop = Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "stop_loss");
        Assert.True((await _trading.RollbackAsync(user, stop.Id)).Success);

        var backstop = await _trading.RiskBackstopAsync();
        await _trading.DrainAsync();

        Assert.True(backstop.Success, backstop.Json);
        Assert.True(backstop.Decimal("queued.stop_loss") >= 1);
        Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "stop_loss" && o.Status == "executed");
    }

    [Theory]
    [InlineData("0", 500)]
    [InlineData("100.5", 500)]
    [InlineData("0.5", 0)]
    [InlineData("0.5", 10001)]
    public async Task A_batch_with_an_impossible_level_or_limit_is_a_validation_error(string level, int limit)
    {
        var response = await _trading.ProcessRiskEventsAsync(decimal.Parse(level, System.Globalization.CultureInfo.InvariantCulture), limit);

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
    }

    private Task<long> QueuedAsync() => _trading.AdminAsync(c => c.ExecuteScalarAsync<long>("SELECT count(*) FROM trading.risk_events"));
}
