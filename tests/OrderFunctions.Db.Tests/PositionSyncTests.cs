using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// trading.sync_positions: a broker snapshot replaces the open positions, and every gain or loss the change implies
/// is booked at the snapshot's closing prices. Contract size 1, margin 10 %, commission 0.1 % on the orders that
/// arrange the positions; the sync itself charges no commission.
/// </summary>
public sealed class PositionSyncTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task A_snapshot_that_drops_a_position_books_its_pnl_at_the_closing_price_and_the_audit_row_says_so()
    {
        // Arrange: long 50 at 100 (balance 995, margin 500).
        var (instrument, user, positionId) = await ArrangeLongOf50At100Async();

        // Act: the broker says the trader holds nothing; it closed the 50 at 95.
        var response = await _trading.SyncAsync(user, [], [new { symbol = instrument.Symbol, price = 95m }]);

        // Assert: (95 - 100) x 50 = -250 booked; margin released.
        Assert.True(response.Success, response.Json);
        Assert.Equal((1, 0, 0, -250m, 0m), ((int)response.Decimal("closed"), (int)response.Decimal("kept"), (int)response.Decimal("opened"),
            response.Decimal("realized_pnl"), response.Decimal("write_off")));
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((745m, 0m, -250m), (account.Balance, account.UsedMargin, account.RealizedPnl));
        var position = await _trading.PositionAsync(user, positionId);
        Assert.Equal(("closed", -250m), (position.Status, position.RealizedPnl));
        var audit = (await _trading.AuditAsync(user))[^1];
        Assert.Equal("position_sync: realized -250 on 1 closed or changed position(s)", audit.Reason);
        Assert.Equal((995m, 745m, 500m, 0m), (audit.BalanceBefore, audit.BalanceAfter, audit.MarginBefore, audit.MarginAfter));
        Assert.Equal(response.Guid("transaction_id"), audit.TransactionId);
        Assert.Equal("[]", await _trading.RowsAsync("trading.ledger_mismatches(@user)", user));
        Assert.Equal("[]", await _trading.RowsAsync("trading.margin_mismatches(@user)", user));
    }

    [Fact]
    public async Task A_snapshot_that_drops_a_position_without_its_closing_price_is_refused_naming_closing_prices_and_changes_nothing()
    {
        var (instrument, user, positionId) = await ArrangeLongOf50At100Async();
        var account = await _trading.AccountSnapshotAsync(user);
        var positions = await _trading.PositionsSnapshotAsync(user);

        var response = await _trading.SyncAsync(user, []);

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
        Assert.Equal("closing_prices", response.Get("errors").EnumerateArray().Single().GetProperty("field").GetString());
        Assert.Contains(instrument.Symbol, response.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(positions, await _trading.PositionsSnapshotAsync(user));
        Assert.Equal("open", (await _trading.PositionAsync(user, positionId)).Status);
    }

    [Fact]
    public async Task A_snapshot_that_repeats_a_position_keeps_it_books_nothing_and_takes_its_stops()
    {
        var (instrument, user, positionId) = await ArrangeLongOf50At100Async();
        var before = await _trading.AccountSnapshotAsync(user);

        var response = await _trading.SyncAsync(user,
            [new { symbol = instrument.Symbol, side = "long", quantity = 50m, avg_entry_price = 100m, stop_loss = 90m }]);

        Assert.True(response.Success, response.Json);
        Assert.Equal((0, 1, 0), ((int)response.Decimal("closed"), (int)response.Decimal("kept"), (int)response.Decimal("opened")));
        Assert.Equal(before, await _trading.AccountSnapshotAsync(user));
        var position = await _trading.PositionAsync(user, positionId);
        Assert.Equal(("open", 90m), (position.Status, position.StopLoss));
    }

    [Fact]
    public async Task A_snapshot_that_reduces_a_position_books_the_pnl_of_the_part_that_went()
    {
        var (instrument, user, _) = await ArrangeLongOf50At100Async();

        // 50 at 100 -> 30 at 100, at 110: the 20 that went realized (110 - 100) x 20 = 200.
        var response = await _trading.SyncAsync(user,
            [new { symbol = instrument.Symbol, side = "long", quantity = 30m, avg_entry_price = 100m }],
            [new { symbol = instrument.Symbol, price = 110m }]);

        Assert.True(response.Success, response.Json);
        Assert.Equal(200m, response.Decimal("realized_pnl"));
        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((1_195m, 300m), (account.Balance, account.UsedMargin));
        var open = Assert.Single(await _trading.PositionsAsync(user), p => p.Status == "open");
        Assert.Equal((30m, 100m), (open.Quantity, open.AvgEntryPrice));
    }

    [Fact]
    public async Task A_snapshot_that_reprices_a_position_books_the_difference_of_entries_so_equity_at_the_closing_price_is_unchanged()
    {
        var (instrument, user, _) = await ArrangeLongOf50At100Async();
        await _trading.UpsertAsync(instrument with { LastPrice = 120m });
        var equityBefore = await EquityAsync(user);

        // The broker's entry is 95, not 100: at 120 the position is worth (120 - 95) x 50 = 1250, not 1000. The
        // difference is booked as a loss of 250, so the 250 more of unrealized PnL creates no money.
        var response = await _trading.SyncAsync(user,
            [new { symbol = instrument.Symbol, side = "long", quantity = 50m, avg_entry_price = 95m }],
            [new { symbol = instrument.Symbol, price = 120m }]);

        Assert.True(response.Success, response.Json);
        Assert.Equal(-250m, response.Decimal("realized_pnl"));
        Assert.Equal(equityBefore, await EquityAsync(user));
    }

    [Fact]
    public async Task A_snapshot_loss_beyond_the_balance_is_written_off_with_an_entry_of_the_syncs_transaction()
    {
        var (instrument, user, _) = await ArrangeLongOf50At100Async();

        // Closed at 70: -1500 against 995.
        var response = await _trading.SyncAsync(user, [], [new { symbol = instrument.Symbol, price = 70m }]);

        Assert.True(response.Success, response.Json);
        Assert.Equal((-1_500m, 505m, 0m), (response.Decimal("realized_pnl"), response.Decimal("write_off"), response.Decimal("balance")));
        var writeOff = Assert.Single(await _trading.WriteOffsAsync(user));
        Assert.Equal(((Guid?)null, response.Guid("transaction_id"), 505m), (writeOff.OrderId, writeOff.TransactionId, writeOff.Amount));
        Assert.Contains("505 written off", (await _trading.AuditAsync(user))[^1].Reason, StringComparison.Ordinal);
        Assert.Equal("[]", await _trading.RowsAsync("trading.write_off_mismatches(@user)", user));
    }

    [Theory]
    [InlineData("long", "110", "90", "positions[0].stop_loss")]
    [InlineData("short", "90", "110", "positions[0].stop_loss")]
    [InlineData("long", "90.001", null, "positions[0].stop_loss")]
    public async Task A_snapshot_position_whose_stops_are_out_of_order_or_off_the_tick_is_refused(string side, string stopLoss, string? takeProfit, string field)
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);

        var response = await _trading.SyncAsync(user,
        [
            new
            {
                symbol = instrument.Symbol, side, quantity = 1m, avg_entry_price = 100m,
                stop_loss = decimal.Parse(stopLoss, System.Globalization.CultureInfo.InvariantCulture),
                take_profit = takeProfit is null ? (decimal?)null : decimal.Parse(takeProfit, System.Globalization.CultureInfo.InvariantCulture),
            },
        ]);

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
        Assert.Equal(field, response.Get("errors").EnumerateArray().Single().GetProperty("field").GetString());
    }

    private async Task<decimal> EquityAsync(Guid user) => await _trading.ScalarAsync<decimal>(Trading.Maintenance, null,
        "SELECT balance + trading.account_unrealized_pnl(user_id) FROM trading.accounts WHERE user_id = @user", new { user });

    private async Task<(Instrument Instrument, Guid User, Guid PositionId)> ArrangeLongOf50At100Async()
    {
        var instrument = await _trading.NewInstrumentAsync(contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m, lastPrice: 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 50m);
        return (instrument, user, opening.Guid("position.id"));
    }
}
