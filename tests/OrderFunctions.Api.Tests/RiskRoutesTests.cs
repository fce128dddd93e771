using System.Text.Json;
using OrderFunctions.Api.Tests.Support;

namespace OrderFunctions.Api.Tests;

/// <summary>PATCH /api/positions/{id} (a trader's stops) and PUT /api/admin/prices (a price feed).</summary>
public sealed class RiskRoutesTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Patch_position_sets_a_stop_that_then_acts_and_leaves_out_what_it_is_not_given()
    {
        var (instrument, token, positionId) = await ArrangeLongAsync(stopLoss: 90m, takeProfit: 110m);

        var patched = await api.SendAsync(HttpMethod.Patch, $"/api/positions/{positionId}", token, new { stop_loss = 92m });
        var risk = (await api.SetPriceAsync(instrument.Symbol, 91m)).GetProperty("risk");

        var position = patched.AssertSuccess(200);
        Assert.Equal((92m, 110m), (position.GetProperty("stop_loss").GetDecimal(), position.GetProperty("take_profit").GetDecimal()));
        Assert.Equal(1, risk.GetProperty("closed").GetProperty("stop_loss").GetInt32());
        var orders = (await api.GetAsync("/api/orders?status=executed", token)).AssertSuccess(200).GetProperty("items");
        var close = Assert.Single(orders.EnumerateArray(), o => o.GetProperty("source").GetString() == "system");
        Assert.Equal(("stop_loss", 91m), (close.GetProperty("type").GetString(), close.GetProperty("executed_price").GetDecimal()));
    }

    [Fact]
    public async Task Patch_position_with_null_clears_a_stop_so_the_price_passes_it()
    {
        var (instrument, token, positionId) = await ArrangeLongAsync(stopLoss: 90m, takeProfit: null);

        var cleared = await api.SendRawAsync(HttpMethod.Patch, $"/api/positions/{positionId}", token, """{"stop_loss": null}""", "application/json");
        var risk = (await api.SetPriceAsync(instrument.Symbol, 89m)).GetProperty("risk");

        Assert.Equal(JsonValueKind.Null, cleared.AssertSuccess(200).GetProperty("stop_loss").ValueKind);
        Assert.Equal(0, risk.GetProperty("closed").GetProperty("stop_loss").GetInt32());
        var open = (await api.GetAsync("/api/positions?status=open", token)).AssertSuccess(200).GetProperty("items");
        Assert.Equal(positionId.ToString(), Assert.Single(open.EnumerateArray()).GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("{}", "body")]
    [InlineData("""{"stop_loss": "soon"}""", "stop_loss")]
    [InlineData("""{"stop_loss": 0}""", "stop_loss")]
    [InlineData("""{"take_profit": 110, "trailing": true}""", "trailing")]
    [InlineData("""{"stop_loss": 100.5}""", "stop_loss")]
    [InlineData("""{"take_profit": 99}""", "take_profit")]
    [InlineData("""{"stop_loss": 95.001}""", "stop_loss")]
    public async Task Patch_position_with_a_bad_body_is_400_naming_the_field_and_changes_nothing(string body, string field)
    {
        var (_, token, positionId) = await ArrangeLongAsync(stopLoss: 90m, takeProfit: null);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendRawAsync(HttpMethod.Patch, $"/api/positions/{positionId}", token, body, "application/json");

        result.AssertFieldError(400, "VALIDATION_ERROR", field);
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Patch_position_is_404_for_another_traders_or_no_position_409_once_closed_and_400_for_an_id_that_is_no_uuid()
    {
        var (instrument, token, positionId) = await ArrangeLongAsync(stopLoss: null, takeProfit: null);
        var stranger = ApiFixture.TokenFor(await api.NewTraderAsync(10m));
        var nobody = ApiFixture.TokenFor(Guid.NewGuid());

        var foreign = await api.SendAsync(HttpMethod.Patch, $"/api/positions/{positionId}", stranger, new { stop_loss = 90m });
        var accountless = await api.SendAsync(HttpMethod.Patch, $"/api/positions/{positionId}", nobody, new { stop_loss = 90m });
        var unknown = await api.SendAsync(HttpMethod.Patch, $"/api/positions/{Guid.NewGuid()}", token, new { stop_loss = 90m });
        var notAnId = await api.SendAsync(HttpMethod.Patch, "/api/positions/42", token, new { stop_loss = 90m });
        await api.ExecutedOrderAsync(token, instrument.Symbol, "sell", 1m);
        var closed = await api.SendAsync(HttpMethod.Patch, $"/api/positions/{positionId}", token, new { stop_loss = 90m });

        foreign.AssertProblem(404, "POSITION_NOT_FOUND");
        accountless.AssertProblem(404, "POSITION_NOT_FOUND");
        unknown.AssertProblem(404, "POSITION_NOT_FOUND");
        notAnId.AssertFieldError(400, "VALIDATION_ERROR", "id");
        closed.AssertProblem(409, "POSITION_NOT_OPEN");
    }

    [Fact]
    public async Task Patch_position_needs_a_token()
    {
        var result = await api.SendAsync(HttpMethod.Patch, $"/api/positions/{Guid.NewGuid()}", null, new { stop_loss = 90m });

        result.AssertProblem(401, "UNAUTHORIZED");
    }

    [Fact]
    public async Task Prices_update_many_instruments_in_one_call_and_report_what_the_risk_engine_did()
    {
        var first = await api.NewInstrumentAsync(lastPrice: 100m);
        var second = await api.NewInstrumentAsync(lastPrice: 20m);

        var result = await api.SendAsync(HttpMethod.Put, "/api/admin/prices", api.AdminToken,
            new { prices = new object[] { new { symbol = first.Symbol, price = 101.5m }, new { symbol = second.Symbol, price = "19.99" } } });

        var data = result.AssertSuccess(200);
        Assert.Equal(2, data.GetProperty("updated").GetInt32());
        var risk = data.GetProperty("risk");
        Assert.False(risk.GetProperty("pending").GetBoolean());
        Assert.Equal(JsonValueKind.Null, risk.GetProperty("error").ValueKind);
        Assert.Equal(101.5m, await api.AdminScalarAsync<decimal>("SELECT last_price FROM trading.instruments WHERE symbol = $1", first.Symbol));
        Assert.Equal(19.99m, await api.AdminScalarAsync<decimal>("SELECT last_price FROM trading.instruments WHERE symbol = $1", second.Symbol));
    }

    [Theory]
    [InlineData("""{"prices": []}""", "prices")]
    [InlineData("""{"prices": [{"symbol": "NOSUCH", "price": 1}]}""", "prices[0].symbol")]
    [InlineData("""{"prices": [{"symbol": "BTC-USD", "price": 1}, {"symbol": "BTC-USD", "price": 2}]}""", "prices[1].symbol")]
    [InlineData("""{"prices": [{"symbol": "BTC-USD", "price": 0}]}""", "prices[0].price")]
    [InlineData("""{"prices": [{"symbol": "BTC-USD", "price": 64000.005}]}""", "prices[0].price")]
    [InlineData("""{"prices": [{"symbol": "BTC-USD"}]}""", "prices[0].price")]
    [InlineData("""{"prices": [{"symbol": "btc", "price": 1}]}""", "prices[0].symbol")]
    public async Task Prices_with_a_bad_item_are_400_naming_it_and_change_nothing(string body, string field)
    {
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendRawAsync(HttpMethod.Put, "/api/admin/prices", api.AdminToken, body, "application/json");

        result.AssertFieldError(400, "VALIDATION_ERROR", field);
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Prices_are_an_admin_route()
    {
        var trader = ApiFixture.TokenFor(await api.NewTraderAsync(10m));
        var body = new { prices = new[] { new { symbol = "BTC-USD", price = 1m } } };

        var forbidden = await api.SendAsync(HttpMethod.Put, "/api/admin/prices", trader, body);
        var anonymous = await api.SendAsync(HttpMethod.Put, "/api/admin/prices", null, body);

        forbidden.AssertProblem(403, "FORBIDDEN");
        anonymous.AssertProblem(401, "UNAUTHORIZED");
    }

    /// <summary>A trader long 1 at 100 of an instrument of the test's own, with these stops.</summary>
    [Fact]
    public async Task A_price_whose_close_keeps_failing_for_one_trader_still_closes_the_others_and_says_what_failed()
    {
        var (instrument, healthyToken, healthyPosition) = await ArrangeLongAsync(stopLoss: 90m, takeProfit: null);
        var poisoned = await api.NewTraderAsync(1_000m);
        var poisonedToken = ApiFixture.TokenFor(poisoned);
        await api.ExecutedOrderWithStopsAsync(poisonedToken, instrument.Symbol, "buy", 1m, 90m, null);
        var refusal = await api.RefuseOrdersOfAsync(poisoned);
        try
        {
            var risk = (await api.SetPriceAsync(instrument.Symbol, 89m)).GetProperty("risk");

            // The batch of both stops failed, then each alone: the healthy one closed, the poisoned one waits for later.
            Assert.Equal((1, 2), (risk.GetProperty("closed").GetProperty("stop_loss").GetInt32(), risk.GetProperty("failed_batches").GetInt32()));
            Assert.Equal("a risk event failed; it is retried later and the rest of the queue goes on", risk.GetProperty("error").GetString());
            var healthyOpen = (await api.GetAsync("/api/positions?status=open", healthyToken)).AssertSuccess(200).GetProperty("items");
            Assert.DoesNotContain(healthyOpen.EnumerateArray(), p => p.GetProperty("id").GetString() == healthyPosition.ToString());
            var poisonedOpen = (await api.GetAsync("/api/positions?status=open", poisonedToken)).AssertSuccess(200).GetProperty("items");
            Assert.Single(poisonedOpen.EnumerateArray());
        }
        finally
        {
            await refusal.DisposeAsync();
            await api.AdminExecuteAsync("DELETE FROM trading.risk_events WHERE user_id = $1", poisoned);
        }
    }

    private async Task<(Instrument Instrument, string Token, Guid PositionId)> ArrangeLongAsync(decimal? stopLoss, decimal? takeProfit)
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 100m);
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(1_000m));
        var opened = await api.ExecutedOrderWithStopsAsync(token, instrument.Symbol, "buy", 1m, stopLoss, takeProfit);
        return (instrument, token, Guid.Parse(opened.GetProperty("position").GetProperty("id").GetString()!));
    }
}
