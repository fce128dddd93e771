using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>trading.set_position_stops (PATCH /api/positions/{id}) and trading.set_prices (PUT /api/admin/prices).</summary>
public sealed class StopsAndPricesTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Set_position_stops_sets_and_clears_stops_and_bumps_the_version()
    {
        var (user, positionId) = await ArrangeLongAsync(stopLoss: 95m, takeProfit: 110m);

        var moved = await _trading.SetStopsAsync(user, positionId, 96m, null, setTakeProfit: false);
        var cleared = await _trading.SetStopsAsync(user, positionId, null, 120m);

        Assert.True(moved.Success, moved.Json);
        Assert.Equal((96m, 110m), (moved.Decimal("stop_loss"), moved.Decimal("take_profit")));
        Assert.True(cleared.Success, cleared.Json);
        var position = await _trading.PositionAsync(user, positionId);
        Assert.Equal(((decimal?)null, (decimal?)120m, 3L), (position.StopLoss, position.TakeProfit, position.Version));
    }

    [Theory]
    [InlineData("100", null, "stop_loss")]
    [InlineData(null, "96.99", "take_profit")]
    [InlineData("95.001", null, "stop_loss")]
    public async Task Set_position_stops_refuses_a_stop_on_the_wrong_side_of_the_last_price_or_off_the_tick_and_changes_nothing(
        string? stopLoss, string? takeProfit, string field)
    {
        var (user, positionId) = await ArrangeLongAsync(stopLoss: 95m, takeProfit: 110m);
        var before = await _trading.PositionSnapshotAsync(user, positionId);

        var response = await _trading.SetStopsAsync(user, positionId, Parse(stopLoss), Parse(takeProfit),
            setStopLoss: stopLoss is not null, setTakeProfit: takeProfit is not null);

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
        Assert.Equal([field], response.Get("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()));
        Assert.Equal(before, await _trading.PositionSnapshotAsync(user, positionId));
    }

    [Fact]
    public async Task Set_position_stops_of_a_closed_position_is_POSITION_NOT_OPEN_and_of_another_traders_POSITION_NOT_FOUND()
    {
        var (user, positionId) = await ArrangeLongAsync(stopLoss: null, takeProfit: null);
        var other = await _trading.NewTraderAsync(10m);
        var position = await _trading.PositionAsync(user, positionId);
        await _trading.ExecutedOrderAsync(user, position.Symbol, "sell", position.Quantity);

        var closed = await _trading.SetStopsAsync(user, positionId, 90m, null);
        var foreign = await _trading.SetStopsAsync(other, positionId, 90m, null);

        Assert.Equal(("POSITION_NOT_OPEN", 409), (closed.ErrorCode, closed.Status));
        Assert.Equal(("POSITION_NOT_FOUND", 404), (foreign.ErrorCode, foreign.Status));
    }

    [Fact]
    public async Task A_stop_change_after_an_order_makes_its_rollback_a_conflict()
    {
        // Rollback restores the position's before-image, stops included: it must not silently undo the change.
        var (user, positionId) = await ArrangeLongAsync(stopLoss: 95m, takeProfit: null);
        var symbol = (await _trading.PositionAsync(user, positionId)).Symbol;
        var added = await _trading.ExecutedOrderAsync(user, symbol, "buy", 1m);
        Assert.True((await _trading.SetStopsAsync(user, positionId, 96m, null, setTakeProfit: false)).Success);

        var rollback = await _trading.RollbackAsync(user, added.Guid("order_id"));

        Assert.Equal(("ROLLBACK_CONFLICT", 409), (rollback.ErrorCode, rollback.Status));
    }

    [Fact]
    public async Task Set_prices_moves_many_last_prices_in_one_call()
    {
        var first = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var second = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 20m);

        var response = await _trading.SetPricesAsync((second.Symbol, 21.5m), (first.Symbol, 99.99m));

        Assert.True(response.Success, response.Json);
        Assert.Equal(2, (int)response.Decimal("updated"));
        var prices = await _trading.AdminAsync(c => c.QueryAsync<(string Symbol, decimal Price)>(
            "SELECT symbol, last_price FROM trading.instruments WHERE symbol = ANY(@symbols) ORDER BY symbol",
            new { symbols = new[] { first.Symbol, second.Symbol } }));
        Assert.Equal(new[] { (first.Symbol, 99.99m), (second.Symbol, 21.5m) }.OrderBy(p => p.Item1, StringComparer.Ordinal), prices);
    }

    [Theory]
    [InlineData("unknown", "10", "prices[1].symbol")]
    [InlineData("known", "10.005", "prices[1].price")]
    [InlineData("duplicate", "10", "prices[1].symbol")]
    public async Task Set_prices_refuses_an_unknown_symbol_a_price_off_the_tick_and_a_symbol_twice_naming_the_item_and_changes_nothing(
        string which, string price, string field)
    {
        var good = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var other = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var symbol = which switch { "unknown" => Instrument.NewSymbol(), "duplicate" => good.Symbol, _ => other.Symbol };

        var response = await _trading.SetPricesAsync((good.Symbol, 101m), (symbol, decimal.Parse(price, System.Globalization.CultureInfo.InvariantCulture)));

        Assert.Equal(("VALIDATION_ERROR", 400), (response.ErrorCode, response.Status));
        Assert.Equal(field, response.Get("errors").EnumerateArray().Single().GetProperty("field").GetString());
        Assert.Equal(100m, await _trading.AdminAsync(c => c.ExecuteScalarAsync<decimal>(
            "SELECT last_price FROM trading.instruments WHERE symbol = @symbol", new { symbol = good.Symbol })));
    }

    [Fact]
    public async Task Set_prices_meets_the_instruments_CHECK_for_a_price_that_is_not_positive_and_changes_nothing()
    {
        // A price > 0 is the API's limit (ApiLimits, before the call); the column's CHECK is the backstop behind it.
        var good = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var other = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);

        var refused = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => _trading.SetPricesAsync((good.Symbol, 101m), (other.Symbol, 0m)));

        Assert.Equal(Npgsql.PostgresErrorCodes.CheckViolation, refused.SqlState);
        Assert.Equal(100m, await _trading.AdminAsync(c => c.ExecuteScalarAsync<decimal>(
            "SELECT last_price FROM trading.instruments WHERE symbol = @symbol", new { symbol = good.Symbol })));
    }

    private static decimal? Parse(string? value) => value is null ? null : decimal.Parse(value, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A trader long 1 at 100 with these stops; the price then moves to 97.</summary>
    private async Task<(Guid User, Guid PositionId)> ArrangeLongAsync(decimal? stopLoss, decimal? takeProfit)
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss, takeProfit);
        await _trading.SetPricesAsync((instrument.Symbol, 97m));
        return (user, opening.Guid("position.id"));
    }
}
