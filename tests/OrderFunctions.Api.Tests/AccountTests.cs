using System.Text.Json;
using OrderFunctions.Api.Tests.Support;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>GET /api/accounts/me and POST /api/strategies.</summary>
public sealed class AccountTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Account_reports_equity_and_free_margin_with_positions_marked_at_last_prices()
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 100m, contractSize: 10m, marginRate: 0.2m, commissionRate: 0.0005m);
        var trader = await api.NewTraderAsync(5_000m);
        var token = ApiFixture.TokenFor(trader);
        await api.ExecutedOrderAsync(token, instrument.Symbol, "buy", 1.5m);
        await api.SetLastPriceAsync(instrument, 104.25m);

        var result = await api.GetAsync("/api/accounts/me", token);

        // Notional 1,500: commission 0.75, margin 300. Marked at 104.25: (104.25 - 100) x 1.5 x 10 = 63.75.
        var account = result.AssertSuccess(200);
        Assert.Equal(trader.ToString(), account.GetProperty("user_id").GetString());
        Assert.Equal("active", account.GetProperty("status").GetString());
        Assert.Equal(4_999.25m, account.GetProperty("balance").GetDecimal());
        Assert.Equal(300m, account.GetProperty("used_margin").GetDecimal());
        Assert.Equal(0m, account.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal(63.75m, account.GetProperty("unrealized_pnl").GetDecimal());
        Assert.Equal(5_063m, account.GetProperty("equity").GetDecimal());
        Assert.Equal(4_763m, account.GetProperty("free_margin").GetDecimal());
        Assert.Equal(2, account.GetProperty("version").GetInt64());
        Assert.True(DateTimeOffset.TryParse(account.GetProperty("created_at").GetString(), out _));
    }

    [Fact]
    public async Task Account_is_404_USER_NOT_FOUND_when_no_deposit_opened_it()
    {
        var result = await api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(Guid.NewGuid()));

        result.AssertProblem(404, "USER_NOT_FOUND");
    }

    [Fact]
    public async Task Strategy_is_201_and_tags_the_orders_and_trades_that_name_it()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));

        var created = await api.SendAsync(HttpMethod.Post, "/api/strategies", token, new { name = "  mean reversion  " });

        var strategy = created.AssertSuccess(201);
        var strategyId = strategy.GetProperty("id").GetString();
        Assert.True(Guid.TryParse(strategyId, out _));
        Assert.Equal("mean reversion", strategy.GetProperty("name").GetString());
        Assert.True(DateTimeOffset.TryParse(strategy.GetProperty("created_at").GetString(), out _));
        var tagged = await api.PlaceOrderAsync(token,
            new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.01m, strategy_id = strategyId });
        tagged.AssertSuccess(201);
        await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.02m);
        var trades = (await api.GetAsync($"/api/trades?strategy_id={strategyId}", token)).AssertSuccess(200);
        var trade = Assert.Single(trades.GetProperty("items").EnumerateArray());
        Assert.Equal(tagged.Data.GetProperty("order_id").GetString(), trade.GetProperty("order_id").GetString());
        Assert.Equal(strategyId, trade.GetProperty("strategy_id").GetString());
        Assert.Equal("mean reversion", trade.GetProperty("strategy_name").GetString());
    }

    [Fact]
    public async Task Strategy_created_again_by_the_same_name_is_200_with_the_one_that_exists()
    {
        // What the server's own retry after a lost answer meets: the repeat learns the strategy it created.
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(100m));
        var first = (await api.SendAsync(HttpMethod.Post, "/api/strategies", token, new { name = "breakout" })).AssertSuccess(201);

        var again = (await api.SendAsync(HttpMethod.Post, "/api/strategies", token, new { name = " breakout " })).AssertSuccess(200);
        var other = (await api.SendAsync(HttpMethod.Post, "/api/strategies", token, new { name = "breakdown" })).AssertSuccess(201);

        Assert.Equal(first.GetRawText(), again.GetRawText());
        Assert.NotEqual(first.GetProperty("id").GetString(), other.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Strategy_is_404_USER_NOT_FOUND_when_the_trader_has_no_account()
    {
        var result = await api.SendAsync(HttpMethod.Post, "/api/strategies", ApiFixture.TokenFor(Guid.NewGuid()), new { name = "orphan" });

        result.AssertProblem(404, "USER_NOT_FOUND");
        Assert.Equal(JsonValueKind.Object, result.Data.ValueKind);
    }
}
