using System.Text.Json;
using OrderFunctions.Api.Tests.Support;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// The risk rules end to end through HTTP, on the account of the report that asked for them: an instrument of
/// contract size 1, margin 10 %, commission 0.1 %; deposit 1000; buy 50 at 100 (margin 500, commission 5: balance
/// 995). Prices move through PUT /api/admin/prices (a feed) or the instruments upsert, and the risk engine acts
/// before either answers.
/// </summary>
public sealed class RiskScenarioTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Stops_on_the_wrong_side_of_the_price_or_off_the_tick_are_400_naming_each_field_and_store_nothing()
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 100m, contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m);
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(1_000m));
        var before = await DatabaseState.CaptureAsync(api);

        var wrongSide = await api.PlaceOrderAsync(token,
            new { symbol = instrument.Symbol, side = "buy", type = "market", quantity = 50m, stop_loss = 150m, take_profit = 50m });
        var offTick = await api.PlaceOrderAsync(token,
            new { symbol = instrument.Symbol, side = "buy", type = "market", quantity = 50m, stop_loss = 90.005m, take_profit = 110m });

        wrongSide.AssertFieldError(400, "VALIDATION_ERROR", "stop_loss").AssertFieldError(400, "VALIDATION_ERROR", "take_profit");
        offTick.AssertFieldError(400, "VALIDATION_ERROR", "stop_loss");
        Assert.DoesNotContain("take_profit", offTick.ErrorFields);
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task The_stop_at_90_closes_the_position_when_the_price_moves_to_85()
    {
        var (instrument, token, opened) = await ArrangeAsync(stopLoss: 90m, takeProfit: 110m);

        var risk = (await api.SetPriceAsync(instrument.Symbol, 85m)).GetProperty("risk");

        Assert.Equal(1, risk.GetProperty("closed").GetProperty("stop_loss").GetInt32());
        var close = await SystemOrderAsync(token, "stop_loss");
        Assert.Equal(("system", "sell", 85m, -750m, 4.25m), (close.GetProperty("source").GetString(), close.GetProperty("side").GetString(),
            close.GetProperty("executed_price").GetDecimal(), close.GetProperty("realized_pnl").GetDecimal(), close.GetProperty("commission").GetDecimal()));
        Assert.Equal(opened.GetProperty("position").GetProperty("id").GetString(), close.GetProperty("position_id").GetString());
        var account = await AccountAsync(token);
        Assert.Equal((240.75m, 0m, 240.75m), (Money(account, "balance"), Money(account, "used_margin"), Money(account, "equity")));
        await AssertIntegrityAsync(token, close);
    }

    [Fact]
    public async Task A_reduce_only_close_that_the_stop_beat_is_409_and_opens_no_short()
    {
        // The trader's close races the stop: the price moves to 85 and the stop closes the position first.
        var (instrument, token, _) = await ArrangeAsync(stopLoss: 90m, takeProfit: null);
        await api.SetPriceAsync(instrument.Symbol, 85m);
        var balance = Money(await AccountAsync(token), "balance");
        var key = Guid.NewGuid().ToString();
        var close = new { symbol = instrument.Symbol, side = "sell", type = "market", quantity = 50m, reduce_only = true };

        var refused = await api.PlaceOrderAsync(token, close, key);
        var replayed = await api.PlaceOrderAsync(token, close, key);

        refused.AssertProblem(409, "REDUCE_ONLY_REJECTED");
        Assert.Contains($"there is no open {instrument.Symbol} position to reduce", refused.Root.GetProperty("error_message").GetString(), StringComparison.Ordinal);
        replayed.AssertProblem(409, "REDUCE_ONLY_REJECTED");
        Assert.Equal("true", replayed.Header("Idempotent-Replayed"));
        var positions = (await api.GetAsync("/api/positions?status=open", token)).AssertSuccess(200).GetProperty("items");
        Assert.Empty(positions.EnumerateArray());
        Assert.Equal(balance, Money(await AccountAsync(token), "balance"));
        var order = (await api.GetAsync($"/api/orders/{refused.Data.GetProperty("order_id").GetString()}", token)).AssertSuccess(200);
        Assert.Equal(("rejected", true), (order.GetProperty("status").GetString(), order.GetProperty("reduce_only").GetBoolean()));
    }

    [Fact]
    public async Task A_reduce_only_order_with_stops_or_a_flag_that_is_not_a_boolean_is_400_and_stores_nothing()
    {
        var (instrument, token, _) = await ArrangeAsync(stopLoss: null, takeProfit: null);
        var before = await DatabaseState.CaptureAsync(api);

        var withStop = await api.PlaceOrderAsync(token,
            new { symbol = instrument.Symbol, side = "sell", type = "market", quantity = 10m, reduce_only = true, stop_loss = 110m });
        var notBoolean = await api.PlaceOrderAsync(token,
            new { symbol = instrument.Symbol, side = "sell", type = "market", quantity = 10m, reduce_only = "yes" });

        withStop.AssertFieldError(400, "VALIDATION_ERROR", "stop_loss");
        notBoolean.AssertFieldError(400, "VALIDATION_ERROR", "reduce_only");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task The_take_profit_closes_the_position_when_an_instruments_upsert_moves_the_price_past_it()
    {
        var (instrument, token, _) = await ArrangeAsync(stopLoss: 90m, takeProfit: 110m);

        var upsert = await api.SendAsync(HttpMethod.Put, "/api/admin/instruments", api.AdminToken,
            new { instruments = new[] { instrument with { LastPrice = 120m } } });

        Assert.Equal(1, upsert.AssertSuccess(200).GetProperty("risk").GetProperty("closed").GetProperty("take_profit").GetInt32());
        var close = await SystemOrderAsync(token, "take_profit");
        // (120 - 100) x 50 = 1000, commission 6.
        Assert.Equal((120m, 1_000m), (close.GetProperty("executed_price").GetDecimal(), close.GetProperty("realized_pnl").GetDecimal()));
        Assert.Equal(1_989m, Money(await AccountAsync(token), "balance"));
        await AssertIntegrityAsync(token, close);
    }

    [Fact]
    public async Task The_account_is_flagged_below_the_margin_call_level_and_stopped_out_below_the_stop_out_level()
    {
        var (instrument, token, _) = await ArrangeAsync(stopLoss: null, takeProfit: null);

        // At 85.2 equity 995 - 740 = 255 on margin 500: level 0.51, below the margin call (1.00), above the stop-out (0.50).
        await api.SetPriceAsync(instrument.Symbol, 85.2m);
        var flagged = await AccountAsync(token);
        // At 85 equity 245: level 0.49.
        var risk = (await api.SetPriceAsync(instrument.Symbol, 85m)).GetProperty("risk");
        var stoppedOut = await AccountAsync(token);

        Assert.Equal((0.51m, true, 1m, 0.5m), (Money(flagged, "margin_level"), flagged.GetProperty("margin_call").GetBoolean(),
            Money(flagged, "margin_call_level"), Money(flagged, "stop_out_level")));
        Assert.Equal(1, risk.GetProperty("closed").GetProperty("liquidation").GetInt32());
        var liquidation = await SystemOrderAsync(token, "liquidation");
        Assert.Equal(85m, liquidation.GetProperty("executed_price").GetDecimal());
        Assert.Equal(JsonValueKind.Null, stoppedOut.GetProperty("margin_level").ValueKind);
        Assert.False(stoppedOut.GetProperty("margin_call").GetBoolean());
        Assert.Equal((240.75m, 0m), (Money(stoppedOut, "balance"), Money(stoppedOut, "used_margin")));
        await AssertIntegrityAsync(token, liquidation);
    }

    [Fact]
    public async Task The_reported_account_at_70_is_closed_with_the_loss_beyond_the_balance_written_off_and_the_books_reconcile()
    {
        var (instrument, token, _) = await ArrangeAsync(stopLoss: null, takeProfit: null);

        // The price gaps to 70: equity -505. The stop-out closes it there: realized -1500, commission 3.5, against 995.
        await api.SetPriceAsync(instrument.Symbol, 70m);
        var liquidated = await AccountAsync(token);
        var liquidation = await SystemOrderAsync(token, "liquidation");

        Assert.Equal(508.5m, liquidation.GetProperty("write_off").GetDecimal());
        Assert.Equal((0m, 0m, 508.5m, 0m), (Money(liquidated, "balance"), Money(liquidated, "used_margin"), Money(liquidated, "written_off"),
            Money(liquidated, "equity")));

        // The print is disputed: the operator rolls the liquidation back, which reopens the position and reverses the
        // write-off. Then the trader sells 50 to close, as in the report: it executes.
        var rollback = await api.SendAsync(HttpMethod.Post, $"/api/orders/{liquidation.GetProperty("id").GetString()}/rollback", api.AdminToken,
            new { reason = "disputed print" });
        var reopened = await AccountAsync(token);
        var close = await api.PlaceOrderAsync(token, new { symbol = instrument.Symbol, side = "sell", type = "market", quantity = 50m });

        rollback.AssertSuccess(200);
        Assert.Equal((995m, 0m, -505m), (Money(reopened, "balance"), Money(reopened, "written_off"), Money(reopened, "equity")));
        var closed = close.AssertSuccess(201);
        Assert.Equal((-1_500m, 3.5m, 508.5m), (closed.GetProperty("realized_pnl").GetDecimal(), closed.GetProperty("commission").GetDecimal(),
            closed.GetProperty("write_off").GetDecimal()));
        var account = await AccountAsync(token);
        Assert.Equal((0m, 0m, 508.5m, 0m, -1_500m), (Money(account, "balance"), Money(account, "used_margin"), Money(account, "written_off"),
            Money(account, "equity"), Money(account, "realized_pnl")));

        // Audited, and the books agree: every transaction's integrity, and the orphan scan's reconciliation.
        var order = (await api.GetAsync($"/api/orders/{closed.GetProperty("order_id").GetString()}", token)).AssertSuccess(200);
        Assert.Equal(508.5m, order.GetProperty("write_off").GetDecimal());
        await AssertIntegrityAsync(token, order);
        await AssertIntegrityAsync(token, liquidation);
        var scan = (await api.SendAsync(HttpMethod.Post, "/api/admin/maintenance/orphan-scan", api.AdminToken)).AssertSuccess(200);
        var counts = scan.GetProperty("findings").GetProperty("counts");
        foreach (var check in new[] { "ledger_mismatches", "margin_mismatches", "write_off_mismatches", "balance_audit_chain_breaks", "risk_backstop" })
        {
            Assert.True(counts.GetProperty(check).GetInt64() == 0, $"{check}: {scan}");
        }
    }

    [Fact]
    public async Task The_broker_sync_that_drops_the_position_books_the_loss_at_its_closing_price()
    {
        var (instrument, token, opened) = await ArrangeAsync(stopLoss: null, takeProfit: null);
        await api.SetPriceAsync(instrument.Symbol, 95m);
        var before = await AccountAsync(token);
        var trader = Guid.Parse(before.GetProperty("user_id").GetString()!);

        var refused = await api.SendAsync(HttpMethod.Post, "/api/admin/positions/sync", api.AdminToken,
            new { user_id = trader, positions = Array.Empty<object>() });
        var synced = await api.SendAsync(HttpMethod.Post, "/api/admin/positions/sync", api.AdminToken,
            new { user_id = trader, positions = Array.Empty<object>(), closing_prices = new[] { new { symbol = instrument.Symbol, price = 95m } } });

        refused.AssertFieldError(400, "VALIDATION_ERROR", "closing_prices");
        Assert.Equal(-250m, synced.AssertSuccess(200).GetProperty("realized_pnl").GetDecimal());
        var after = await AccountAsync(token);
        // Equity 995 - 250 before; balance 745 after, nothing open: no gain or loss left the books.
        Assert.Equal((745m, 745m, 745m, -250m), (Money(before, "equity"), Money(after, "balance"), Money(after, "equity"), Money(after, "realized_pnl")));
        var positions = (await api.GetAsync("/api/positions?status=closed", token)).AssertSuccess(200).GetProperty("items");
        var position = Assert.Single(positions.EnumerateArray(), p => p.GetProperty("id").GetString() == opened.GetProperty("position").GetProperty("id").GetString());
        Assert.Equal(-250m, position.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal(1, await api.CountAsync("FROM trading.balance_audit_log WHERE user_id = $1 AND reason LIKE 'position_sync: realized -250 %'", trader));
    }

    private async Task<(Instrument Instrument, string Token, JsonElement Opened)> ArrangeAsync(decimal? stopLoss, decimal? takeProfit)
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 100m, contractSize: 1m, marginRate: 0.1m, commissionRate: 0.001m);
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(1_000m));
        var opened = await api.ExecutedOrderWithStopsAsync(token, instrument.Symbol, "buy", 50m, stopLoss, takeProfit);
        Assert.Equal(995m, opened.GetProperty("account").GetProperty("balance").GetDecimal());
        return (instrument, token, opened);
    }

    private async Task<JsonElement> AccountAsync(string token) => (await api.GetAsync("/api/accounts/me", token)).AssertSuccess(200);

    /// <summary>The trader's one order of this type, as GET /api/orders lists it.</summary>
    private async Task<JsonElement> SystemOrderAsync(string token, string type)
    {
        var orders = (await api.GetAsync("/api/orders?status=executed", token)).AssertSuccess(200).GetProperty("items");
        return Assert.Single(orders.EnumerateArray(), o => o.GetProperty("type").GetString() == type);
    }

    private async Task AssertIntegrityAsync(string token, JsonElement order)
    {
        var id = order.GetProperty("transaction_id").GetString();
        var integrity = (await api.GetAsync($"/api/transactions/{id}/integrity", token)).AssertSuccess(200);
        Assert.True(integrity.GetProperty("valid").GetBoolean(), integrity.ToString());
    }

    private static decimal Money(JsonElement element, string name) => element.GetProperty(name).GetDecimal();
}
