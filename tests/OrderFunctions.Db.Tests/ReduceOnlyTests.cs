using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// execute_order for an order that only shrinks or closes a position: never refused for balance or margin, a loss
/// beyond the balance written off; and the stop levels an order may set. The instrument is the one of the issue's
/// report: contract size 1, margin 10 %, commission 0.1 %.
/// </summary>
public sealed class ReduceOnlyTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Closing_a_position_whose_loss_exceeds_the_balance_executes_and_writes_off_the_shortfall()
    {
        // Arrange: deposit 1000, buy 50 at 100 (margin 500, commission 5): balance 995. The price falls to 70 with no
        // risk engine run, so nothing has closed it: equity 995 - 1500 = -505.
        var (instrument, user, opening) = await ArrangeLongOf50At100Async();
        await _trading.UpsertAsync(instrument with { LastPrice = 70m });

        // Act: the trader closes it.
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "sell", 50m);

        // Assert: executed at 70; realized -1500 and commission 3.5 against 995: 508.5 written off, balance 0.
        Assert.True(response.Success, response.Json);
        Assert.Equal(201, response.Status);
        Assert.Equal((-1_500m, 3.5m, 508.5m), (response.Decimal("realized_pnl"), response.Decimal("commission"), response.Decimal("write_off")));
        Assert.Equal((0m, 0m), (response.Decimal("account.balance"), response.Decimal("account.used_margin")));
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((0m, 0m, -1_500m), (account.Balance, account.UsedMargin, account.RealizedPnl));
        var position = await _trading.PositionAsync(user, opening.Guid("position.id"));
        Assert.Equal(("closed", 0m), (position.Status, position.Quantity));

        var order = await _trading.OrderAsync(user, response.Guid("order_id"));
        Assert.Equal(("executed", 508.5m, -995m, -500m), (order.Status, order.WriteOff, order.BalanceDelta, order.MarginDelta));
        var writeOff = Assert.Single(await _trading.WriteOffsAsync(user));
        Assert.Equal(("negative_balance", 508.5m, order.Id, order.TransactionId), (writeOff.Reason, writeOff.Amount, writeOff.OrderId, writeOff.TransactionId));

        // The audit row: 995 -> 0, equity -505 -> 0 (commission 3.5 paid, 508.5 written off).
        var audit = (await _trading.AuditAsync(user))[^1];
        Assert.Equal(("order_executed", order.Id), (audit.Reason, audit.OrderId));
        Assert.Equal((995m, 0m, 500m, 0m), (audit.BalanceBefore, audit.BalanceAfter, audit.MarginBefore, audit.MarginAfter));
        Assert.Equal((-505m, 0m), (audit.EquityBefore, audit.EquityAfter));

        var integrity = await _trading.IntegrityAsync(user, order.TransactionId);
        Assert.True(integrity.Bool("valid"), integrity.Json);
        Assert.Equal("[]", await _trading.RowsAsync("trading.write_off_mismatches(@user)", user));
        Assert.Equal("[]", await _trading.RowsAsync("trading.ledger_mismatches(@user)", user));
    }

    [Fact]
    public async Task A_partial_close_beyond_the_balance_executes_and_keeps_the_rest_open()
    {
        var (instrument, user, opening) = await ArrangeLongOf50At100Async();
        await _trading.UpsertAsync(instrument with { LastPrice = 70m });

        // Sell 40 at 70: realized -1200, commission 2.8: 995 - 1202.8 leaves 207.8 to write off; 400 of margin released.
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "sell", 40m);

        Assert.True(response.Success, response.Json);
        Assert.Equal(207.8m, response.Decimal("write_off"));
        var position = await _trading.PositionAsync(user, opening.Guid("position.id"));
        Assert.Equal(("open", 10m, 100m), (position.Status, position.Quantity, position.UsedMargin));
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((0m, 100m), (account.Balance, account.UsedMargin));
        Assert.Equal(207.8m, Assert.Single(await _trading.WriteOffsAsync(user)).Amount);
        Assert.True((await _trading.IntegrityAsync(user, response.Guid("transaction_id"))).Bool("valid"));
    }

    [Fact]
    public async Task An_order_that_closes_and_opens_the_other_side_is_still_checked_and_says_which_order_only_closes()
    {
        var (instrument, user, _) = await ArrangeLongOf50At100Async();
        await _trading.UpsertAsync(instrument with { LastPrice = 70m });
        var before = await _trading.AccountSnapshotAsync(user);

        // Sell 60: closes 50 with the loss and would open 10 short that nothing pays for.
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "sell", 60m);

        Assert.False(response.Success);
        Assert.Equal(("INSUFFICIENT_BALANCE", 400), (response.ErrorCode, response.Status));
        Assert.Contains("an order of 50 only closes the position and is never refused", response.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal("rejected", (await _trading.OrderAsync(user, response.Guid("order_id"))).Status);
        Assert.Equal(before, await _trading.AccountSnapshotAsync(user));
        Assert.Empty(await _trading.WriteOffsAsync(user));
    }

    [Theory]
    [InlineData("buy", "150", "50")]
    [InlineData("sell", "50", "150")]
    public async Task Stops_on_the_wrong_side_of_the_price_are_refused_naming_both_fields_and_store_nothing(string side, string stopLoss, string takeProfit)
    {
        // The report's case: a buy at 100 with stop_loss 150 and take_profit 50 (and its mirror for a sell).
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var before = await _trading.CountsAsync(user);

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, side, 1m,
            stopLoss: decimal.Parse(stopLoss, System.Globalization.CultureInfo.InvariantCulture),
            takeProfit: decimal.Parse(takeProfit, System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
        Assert.Equal(["stop_loss", "take_profit"], response.Get("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()));
        Assert.Contains(side == "buy" ? "must be below the price 100 for a long position" : "must be above the price 100 for a short position",
            response.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(before, await _trading.CountsAsync(user));
    }

    [Fact]
    public async Task A_stop_off_the_tick_is_refused()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95.005m, takeProfit: 110m);

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
        Assert.Equal(["stop_loss"], response.Get("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()));
        Assert.Contains("multiple of the tick size 0.01", response.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stops_on_the_right_side_are_set_on_the_position_the_order_opens()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);

        var response = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m, stopLoss: 105m, takeProfit: 90m);

        var position = await _trading.PositionAsync(user, response.Guid("position.id"));
        Assert.Equal(("short", 105m, 90m), (position.Side, position.StopLoss, position.TakeProfit));
    }

    [Fact]
    public async Task An_order_that_only_reduces_a_position_takes_no_stop_and_stores_nothing()
    {
        var (instrument, user, _) = await ArrangeLongOf50At100Async();
        var before = await _trading.CountsAsync(user);

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "sell", 10m, stopLoss: 110m);

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
        Assert.Contains("PATCH /api/positions/{id}", response.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(before, await _trading.CountsAsync(user));
    }

    [Fact]
    public async Task A_reduce_only_close_that_a_stop_loss_beat_is_rejected_and_opens_nothing()
    {
        // Arrange: long 50 at 100 with its stop-loss at 90; the price falls to 85 and the risk engine closes it.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 50m, stopLoss: 90m);
        Assert.True((await _trading.SetPricesAsync((instrument.Symbol, 85m))).Success);
        await _trading.DrainAsync();
        Assert.All(await _trading.PositionsAsync(user), p => Assert.Equal("closed", p.Status));
        var before = await _trading.AccountSnapshotAsync(user);
        var positionsBefore = await _trading.PositionsSnapshotAsync(user);

        // Act: the trader's close, sent before they saw the stop act.
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "sell", 50m, reduceOnly: true);

        // Assert: refused and recorded as such; no short opened, no money moved.
        Assert.Equal(("REDUCE_ONLY_REJECTED", 409), (response.ErrorCode, response.Status));
        Assert.Contains($"there is no open {instrument.Symbol} position to reduce", response.ErrorMessage, StringComparison.Ordinal);
        var order = await _trading.OrderAsync(user, response.Guid("order_id"));
        Assert.Equal(("rejected", true, "REDUCE_ONLY_REJECTED"), (order.Status, order.ReduceOnly, order.ErrorCode));
        Assert.Equal(before, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(positionsBefore, await _trading.PositionsSnapshotAsync(user));
        Assert.Equal("REJECTED", (await _trading.ExecutionLogsAsync(user))[^1].Event);
    }

    [Theory]
    [InlineData("buy", 10, "reduce_only: a buy adds to the long position")]
    [InlineData("sell", 60, "reduce_only: 60 exceeds the long position of 50")]
    public async Task A_reduce_only_order_that_would_add_or_flip_is_rejected(string side, int quantity, string message)
    {
        var (instrument, user, _) = await ArrangeLongOf50At100Async();
        var before = await _trading.AccountSnapshotAsync(user);
        var positionsBefore = await _trading.PositionsSnapshotAsync(user);

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, side, quantity, reduceOnly: true);

        Assert.Equal(("REDUCE_ONLY_REJECTED", 409), (response.ErrorCode, response.Status));
        Assert.Contains(message, response.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal("rejected", (await _trading.OrderAsync(user, response.Guid("order_id"))).Status);
        Assert.Equal(before, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(positionsBefore, await _trading.PositionsSnapshotAsync(user));
    }

    [Fact]
    public async Task A_reduce_only_close_of_a_losing_position_executes_like_any_close()
    {
        // The same close as the first test's, flagged: never refused for balance, the shortfall written off.
        var (instrument, user, opening) = await ArrangeLongOf50At100Async();
        await _trading.UpsertAsync(instrument with { LastPrice = 70m });

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "sell", 50m, reduceOnly: true);

        Assert.True(response.Success, response.Json);
        Assert.Equal((201, 508.5m), (response.Status, response.Decimal("write_off")));
        var order = await _trading.OrderAsync(user, response.Guid("order_id"));
        Assert.Equal(("executed", true), (order.Status, order.ReduceOnly));
        Assert.Equal("closed", (await _trading.PositionAsync(user, opening.Guid("position.id"))).Status);
        Assert.True((await _trading.IntegrityAsync(user, order.TransactionId)).Bool("valid"));
    }

    private async Task<(Instrument Instrument, Guid User, Envelope Opening)> ArrangeLongOf50At100Async()
    {
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 50m);
        Assert.Equal(995m, opening.Decimal("account.balance"));
        return (instrument, user, opening);
    }
}
