using System.Globalization;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// trading.execute_order as the API calls it. Expected money is worked out by hand from the instrument each
/// test upserts: notional = quantity × contract_size × price, margin = notional × margin_rate,
/// commission = notional × commission_rate, each rounded to 8 decimals.
/// </summary>
public sealed class ExecuteOrderTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task An_orders_ids_are_time_ordered_so_its_index_entries_go_to_the_right_edge()
    {
        // Arrange
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(10_000m);

        // Act: two orders a few milliseconds apart.
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        await Task.Delay(5);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);

        // Assert: order, transaction and fill ids are version 7 (Unix milliseconds first), taken when the order ran,
        // and the later order's sort after the earlier one's.
        var ids = (await _trading.AdminAsync(c => Dapper.SqlMapper.QueryAsync<(Guid Order, Guid Transaction, Guid Fill, DateTime CreatedAt)>(c,
            """
            SELECT o.id, o.transaction_id, f.id, o.created_at
            FROM trading.orders o JOIN trading.fills f ON f.user_id = o.user_id AND f.order_id = o.id
            WHERE o.user_id = @user ORDER BY o.created_at
            """, new { user }))).ToList();
        Assert.Equal(2, ids.Count);
        foreach (var (order, transaction, fill, createdAt) in ids)
        {
            foreach (var id in new[] { order, transaction, fill })
            {
                var hex = id.ToString("N");
                Assert.Equal('7', hex[12]);
                var at = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(hex[..12], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                Assert.InRange((at - new DateTimeOffset(createdAt, TimeSpan.Zero)).TotalSeconds, -1, 5);
            }
        }

        Assert.True(string.CompareOrdinal(ids[0].Order.ToString("N")[..12], ids[1].Order.ToString("N")[..12]) < 0);
    }

    [Fact]
    public async Task Execute_order_writes_order_fill_position_audit_and_log_with_exact_money()
    {
        // Arrange: notional 1.5 × 10 × 123.45 = 1851.75; margin × 0.05 = 92.5875; commission × 0.0002 = 0.37035.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 10m, marginRate: 0.05m, commissionRate: 0.0002m, lastPrice: 123.45m);
        var user = await _trading.NewTraderAsync(10_000m);

        // Act
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1.5m);

        // Assert: the response
        Assert.True(response.Success, response.Json);
        Assert.Equal(201, response.Status);
        Assert.Null(response.ErrorCode);
        Assert.Equal("executed", response.String("status"));
        Assert.Equal(123.45m, response.Decimal("executed_price"));
        Assert.Equal(0.37035m, response.Decimal("commission"));
        Assert.Equal(92.5875m, response.Decimal("margin_delta"));
        Assert.Equal(0m, response.Decimal("realized_pnl"));
        Assert.Equal(9_999.62965m, response.Decimal("account.balance"));
        Assert.Equal(92.5875m, response.Decimal("account.used_margin"));
        Assert.Equal(1.5m, response.Decimal("position.quantity"));
        var orderId = response.Guid("order_id");
        var transactionId = response.Guid("transaction_id");

        // the account
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal(9_999.62965m, account.Balance);
        Assert.Equal(92.5875m, account.UsedMargin);
        Assert.Equal(0m, account.RealizedPnl);

        // the order
        var order = Assert.Single(await _trading.OrdersAsync(user));
        Assert.Equal(orderId, order.Id);
        Assert.Equal(transactionId, order.TransactionId);
        Assert.Equal("executed", order.Status);
        Assert.Equal(1.5m, order.FilledQuantity);
        Assert.Equal(123.45m, order.ExecutedPrice);
        Assert.Equal(0.37035m, order.Commission);
        Assert.Equal(-0.37035m, order.BalanceDelta);
        Assert.Equal(92.5875m, order.MarginDelta);
        Assert.Equal(0m, order.RealizedPnl);

        // the fill
        var fill = Assert.Single(await _trading.FillsAsync(user));
        Assert.Equal(orderId, fill.OrderId);
        Assert.Equal("buy", fill.Side);
        Assert.Equal(1.5m, fill.Quantity);
        Assert.Equal(123.45m, fill.Price);
        Assert.Equal(0.37035m, fill.Commission);
        Assert.Equal(transactionId, fill.TransactionId);

        // the position
        var position = Assert.Single(await _trading.PositionsAsync(user));
        Assert.Equal(order.PositionId, position.Id);
        Assert.Equal(response.Guid("position.id"), position.Id);
        Assert.Equal(("long", "open"), (position.Side, position.Status));
        Assert.Equal(1.5m, position.Quantity);
        Assert.Equal(123.45m, position.AvgEntryPrice);
        Assert.Equal(92.5875m, position.UsedMargin);
        Assert.Equal(0.37035m, position.CommissionPaid);
        Assert.Equal(transactionId, position.LastTransactionId);

        // the audit row (the deposit's comes first)
        var audit = await _trading.AuditAsync(user);
        Assert.Equal(2, audit.Count);
        Assert.Equal("order_executed", audit[1].Reason);
        Assert.Equal(orderId, audit[1].OrderId);
        Assert.Equal(transactionId, audit[1].TransactionId);
        Assert.Equal((10_000m, 9_999.62965m), (audit[1].BalanceBefore, audit[1].BalanceAfter));
        Assert.Equal((0m, 92.5875m), (audit[1].MarginBefore, audit[1].MarginAfter));
        Assert.Equal((10_000m, 9_999.62965m), (audit[1].EquityBefore, audit[1].EquityAfter));

        // the execution log, and no error
        var log = Assert.Single(await _trading.ExecutionLogsAsync(user));
        Assert.Equal(("EXECUTED", orderId, transactionId), (log.Event, log.OrderId, log.TransactionId));
        Assert.Empty(await _trading.ErrorLogAsync(user));
    }

    [Fact]
    public async Task Execute_order_rejects_when_the_balance_cannot_pay_the_commission()
    {
        // Arrange: a first order of 1 (commission 1 × 100 × 0.01 = 1, margin 1) leaves balance 1.5;
        // the next order of 2 would cost commission 2.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.01m, commissionRate: 0.01m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(2.5m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var before = await MoneySnapshotAsync(user);

        // Act
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 2m);

        // Assert
        await AssertRejectedAsync(user, response, "INSUFFICIENT_BALANCE", 400, before);
        Assert.Equal(1.5m, (await _trading.ExistingAccountAsync(user)).Balance);
    }

    [Fact]
    public async Task Execute_order_rejects_when_margin_is_insufficient()
    {
        // Arrange: after buying 1 (margin 10, commission 0.1) the trader has 99.9 with 10 used; 20 more need margin 200.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(100m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var before = await MoneySnapshotAsync(user);

        // Act
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 20m);

        // Assert
        await AssertRejectedAsync(user, response, "INSUFFICIENT_MARGIN", 400, before);
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((99.9m, 10m), (account.Balance, account.UsedMargin));
    }

    [Fact]
    public async Task Execute_order_for_a_user_without_an_account_writes_nothing()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var stranger = Guid.NewGuid();

        var response = await _trading.ExecuteOrderAsync(stranger, instrument.Symbol, "buy", 1m);

        Assert.False(response.Success);
        Assert.Equal(("USER_NOT_FOUND", 404), (response.ErrorCode, response.Status));
        Assert.Equal(new RowCounts(), await _trading.CountsAsync(stranger));
    }

    [Fact]
    public async Task Execute_order_for_an_unknown_instrument_writes_nothing_and_keeps_the_key_free()
    {
        // Arrange
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var before = await _trading.CountsAsync(user);
        var key = Guid.NewGuid().ToString();

        // Act
        var response = await _trading.ExecuteOrderAsync(user, Instrument.NewSymbol(), "buy", 1m, key: key, fingerprint: "first");

        // Assert: nothing written, and the client may fix the request and retry with the same key
        Assert.False(response.Success);
        Assert.Equal(("INSTRUMENT_NOT_FOUND", 404), (response.ErrorCode, response.Status));
        Assert.Equal(before, await _trading.CountsAsync(user));
        var retry = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1m, key: key, fingerprint: "second");
        Assert.True(retry.Success, retry.Json);
        Assert.False(retry.Replayed);
    }

    [Fact]
    public async Task Execute_order_rejects_an_instrument_that_is_not_tradable()
    {
        var instrument = Instrument.New(1m, 0.1m, 0.001m, 100m) with { Tradable = false };
        await _trading.UpsertAsync(instrument);
        var user = await _trading.NewTraderAsync(1_000m);
        var before = await MoneySnapshotAsync(user);

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1m);

        await AssertRejectedAsync(user, response, "INSTRUMENT_NOT_TRADABLE", 409, before);
    }

    [Theory]
    [InlineData("buy", "99.99")]
    [InlineData("sell", "100.01")]
    public async Task Limit_order_that_is_not_marketable_at_the_last_price_is_rejected(string side, string limit)
    {
        // Immediate-or-cancel at last price 100: a buy limited below it, or a sell limited above it, cannot fill.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var before = await MoneySnapshotAsync(user);
        var limitPrice = decimal.Parse(limit, CultureInfo.InvariantCulture);

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, side, 1m, type: "limit", limitPrice: limitPrice);

        await AssertRejectedAsync(user, response, "PRICE_NOT_MARKETABLE", 409, before);
        var order = Assert.Single(await _trading.OrdersAsync(user));
        Assert.Equal(("limit", limitPrice), (order.Type, order.LimitPrice));
    }

    [Theory]
    [InlineData("buy", "100.5")]
    [InlineData("buy", "100")]
    [InlineData("sell", "99.5")]
    public async Task Marketable_limit_order_executes_at_the_last_price(string side, string limit)
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);

        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, side, 1m, type: "limit",
            limitPrice: decimal.Parse(limit, CultureInfo.InvariantCulture));

        Assert.True(response.Success, response.Json);
        Assert.Equal(100m, response.Decimal("executed_price"));
    }

    [Fact]
    public async Task Buying_more_averages_the_entry_price()
    {
        // Arrange: buy 1 at 100 (margin 10, commission 0.1), then the price moves to 110.01.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var first = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        await _trading.UpsertAsync(instrument with { LastPrice = 110.01m });

        // Act: buy 2 at 110.01: notional 220.02, margin 22.002, commission 0.22002.
        var second = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 2m);

        // Assert: (100 × 1 + 110.01 × 2) / 3 = 106.67333... kept to 12 decimals.
        var position = Assert.Single(await _trading.PositionsAsync(user));
        Assert.Equal(first.Guid("position.id"), position.Id);
        Assert.Equal(second.Guid("position.id"), position.Id);
        Assert.Equal(("long", "open", 3m), (position.Side, position.Status, position.Quantity));
        Assert.Equal(106.673333333333m, position.AvgEntryPrice);
        Assert.Equal(32.002m, position.UsedMargin);
        Assert.Equal(0.32002m, position.CommissionPaid);
        Assert.Equal(2, position.Version);
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal(10_000m - 0.1m - 0.22002m, account.Balance);
        Assert.Equal(32.002m, account.UsedMargin);
    }

    [Fact]
    public async Task Selling_part_of_a_long_realizes_pnl_at_the_average_entry_and_releases_margin_pro_rata()
    {
        // Arrange: the long of the averaging test, 3 at 106.673333333333 holding margin 32.002; balance 9999.67998.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        await _trading.UpsertAsync(instrument with { LastPrice = 110.01m });
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 2m);
        await _trading.UpsertAsync(instrument with { LastPrice = 120m });

        // Act: sell 1 at 120.
        var response = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m);

        // Assert: realized (120 − 106.673333333333) × 1 = 13.326666666667 → 13.32666667;
        // released 32.002 × 1/3 = 10.667333... → 10.66733333; commission 120 × 0.001 = 0.12.
        Assert.Equal(13.32666667m, response.Decimal("realized_pnl"));
        Assert.Equal(-10.66733333m, response.Decimal("margin_delta"));
        var order = await _trading.OrderAsync(user, response.Guid("order_id"));
        Assert.Equal(13.32666667m, order.RealizedPnl);
        Assert.Equal(13.32666667m - 0.12m, order.BalanceDelta);
        Assert.Equal(-10.66733333m, order.MarginDelta);
        var fill = (await _trading.FillsAsync(user))[^1];
        Assert.Equal(13.32666667m, fill.RealizedPnl);

        var position = Assert.Single(await _trading.PositionsAsync(user));
        Assert.Equal(("long", "open", 2m), (position.Side, position.Status, position.Quantity));
        Assert.Equal(106.673333333333m, position.AvgEntryPrice);
        Assert.Equal(21.33466667m, position.UsedMargin);
        Assert.Equal(13.32666667m, position.RealizedPnl);
        Assert.Equal(0.44002m, position.CommissionPaid);

        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal(10_012.88664667m, account.Balance);
        Assert.Equal(21.33466667m, account.UsedMargin);
        Assert.Equal(13.32666667m, account.RealizedPnl);
    }

    [Fact]
    public async Task Selling_the_whole_long_closes_the_position()
    {
        // Arrange: buy 3 at 100 with contract size 10: margin 300, commission 3, balance 9997.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 10m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 3m);
        await _trading.UpsertAsync(instrument with { LastPrice = 98m });

        // Act: sell 3 at 98: realized (98 − 100) × 3 × 10 = −60, commission 2940 × 0.001 = 2.94.
        var response = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 3m);

        // Assert
        var position = Assert.Single(await _trading.PositionsAsync(user));
        Assert.Equal(("closed", 0m, 0m), (position.Status, position.Quantity, position.UsedMargin));
        Assert.NotNull(position.ClosedAt);
        Assert.Equal(-60m, position.RealizedPnl);
        Assert.Equal(5.94m, position.CommissionPaid);
        Assert.Equal("closed", response.String("position.status"));

        var order = await _trading.OrderAsync(user, response.Guid("order_id"));
        Assert.Equal((-60m, -62.94m, -300m), (order.RealizedPnl, order.BalanceDelta, order.MarginDelta));

        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal(9_934.06m, account.Balance);
        Assert.Equal(0m, account.UsedMargin);
        Assert.Equal(-60m, account.RealizedPnl);
    }

    [Fact]
    public async Task Selling_more_than_the_long_closes_it_and_opens_a_short_with_the_rest()
    {
        // Arrange: buy 2 at 100 with contract size 10: margin 200, commission 2, balance 9998.
        var instrument = await _trading.NewInstrumentAsync(contractSize: 10m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 2m);
        await _trading.UpsertAsync(instrument with { LastPrice = 90m });

        // Act: sell 5 at 90: closes 2 realizing (90 − 100) × 2 × 10 = −200 and releasing 200;
        // opens 3 short with margin 3 × 10 × 90 × 0.1 = 270; commission 5 × 10 × 90 × 0.001 = 4.5.
        var response = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 5m);

        // Assert
        var positions = await _trading.PositionsAsync(user);
        Assert.Equal(2, positions.Count);
        var old = Assert.Single(positions, p => p.Id == opening.Guid("position.id"));
        Assert.Equal(("long", "closed", 0m, 0m), (old.Side, old.Status, old.Quantity, old.UsedMargin));
        Assert.Equal(-200m, old.RealizedPnl);
        Assert.Equal(2m, old.CommissionPaid);
        var flipped = Assert.Single(positions, p => p.Id != old.Id);
        Assert.Equal(response.Guid("position.id"), flipped.Id);
        Assert.Equal(("short", "open", 3m), (flipped.Side, flipped.Status, flipped.Quantity));
        Assert.Equal(90m, flipped.AvgEntryPrice);
        Assert.Equal(270m, flipped.UsedMargin);
        Assert.Equal(4.5m, flipped.CommissionPaid);

        var order = await _trading.OrderAsync(user, response.Guid("order_id"));
        Assert.Equal(flipped.Id, order.PositionId);
        Assert.Equal((-200m, -204.5m, 70m), (order.RealizedPnl, order.BalanceDelta, order.MarginDelta));

        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal(9_793.5m, account.Balance);
        Assert.Equal(270m, account.UsedMargin);
        Assert.Equal(-200m, account.RealizedPnl);
    }

    private sealed record MoneySnapshot(string Account, string Positions, int Fills, int AuditRows, int ExecutionLogs, int Errors);

    private async Task<MoneySnapshot> MoneySnapshotAsync(Guid user) => new(
        await _trading.AccountSnapshotAsync(user),
        await _trading.PositionsSnapshotAsync(user),
        (await _trading.FillsAsync(user)).Count,
        (await _trading.AuditAsync(user)).Count,
        (await _trading.ExecutionLogsAsync(user)).Count,
        (await _trading.ErrorLogAsync(user)).Count);

    /// <summary>A business rejection leaves its trail (order rejected, REJECTED log, error_log row) and moves no money.</summary>
    private async Task AssertRejectedAsync(Guid user, Envelope response, string code, int status, MoneySnapshot before)
    {
        Assert.False(response.Success, response.Json);
        Assert.Equal((code, status), (response.ErrorCode, response.Status));
        Assert.Equal("rejected", response.String("status"));
        var orderId = response.Guid("order_id");

        var order = await _trading.OrderAsync(user, orderId);
        Assert.Equal(("rejected", code), (order.Status, order.ErrorCode));
        Assert.Equal(0m, order.FilledQuantity);
        Assert.Null(order.PositionId);
        Assert.NotNull(order.Response);

        var logs = await _trading.ExecutionLogsAsync(user);
        Assert.Equal(before.ExecutionLogs + 1, logs.Count);
        Assert.Equal(("REJECTED", code, orderId), (logs[^1].Event, logs[^1].ErrorCode, logs[^1].OrderId));

        var errors = await _trading.ErrorLogAsync(user);
        Assert.Equal(before.Errors + 1, errors.Count);
        Assert.Equal((code, orderId), (errors[^1].ErrorCode, errors[^1].OrderId));

        // No money moved: account, positions, fills and audit rows as they were.
        Assert.Equal(before with { ExecutionLogs = logs.Count, Errors = errors.Count }, await MoneySnapshotAsync(user));
    }
}
