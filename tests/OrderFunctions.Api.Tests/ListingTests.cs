using System.Text.Json;
using OrderFunctions.Api.Tests.Support;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>GET /api/orders, /api/positions and /api/trades: filters, keyset pages, exact fields.</summary>
public class ListingTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Orders_listing_pages_newest_first_and_filters_by_status_and_symbol()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(100_000m));
        var ids = new List<string>();
        foreach (var quantity in new[] { 0.01m, 0.02m, 0.03m })
        {
            ids.Add((await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", quantity)).GetProperty("order_id").GetString()!);
        }

        var btc = (await api.ExecutedOrderAsync(token, Btc.Symbol, "buy", 0.001m)).GetProperty("order_id").GetString()!;
        var rejected = await api.PlaceOrderAsync(token, new { symbol = Halted.Symbol, side = "sell", type = "market", quantity = 1m });
        rejected.AssertProblem(409, "INSTRUMENT_NOT_TRADABLE");

        var firstPage = (await api.GetAsync("/api/orders?limit=2", token)).AssertSuccess(200);
        var secondPage = (await api.GetAsync($"/api/orders?limit=2&cursor={Uri.EscapeDataString(firstPage.GetProperty("next_cursor").GetString()!)}", token))
            .AssertSuccess(200);
        var thirdPage = (await api.GetAsync($"/api/orders?limit=2&cursor={Uri.EscapeDataString(secondPage.GetProperty("next_cursor").GetString()!)}", token))
            .AssertSuccess(200);
        var executedEurUsd = (await api.GetAsync("/api/orders?status=executed&symbol=EURUSD", token)).AssertSuccess(200);
        var rejectedOnly = (await api.GetAsync("/api/orders?status=rejected", token)).AssertSuccess(200);

        var all = Ids(firstPage).Concat(Ids(secondPage)).Concat(Ids(thirdPage)).ToList();
        Assert.Equal([rejected.Data.GetProperty("order_id").GetString()!, btc, ids[2], ids[1], ids[0]], all);
        Assert.Equal(JsonValueKind.Null, thirdPage.GetProperty("next_cursor").ValueKind);
        Assert.Equal([ids[2], ids[1], ids[0]], Ids(executedEurUsd));
        Assert.Equal(JsonValueKind.Null, executedEurUsd.GetProperty("next_cursor").ValueKind);
        var only = Assert.Single(rejectedOnly.GetProperty("items").EnumerateArray());
        Assert.Equal("INSTRUMENT_NOT_TRADABLE", only.GetProperty("error_code").GetString());
        var newestEurUsd = executedEurUsd.GetProperty("items")[0];
        Assert.Equal(0.03m, newestEurUsd.GetProperty("quantity").GetDecimal());
        Assert.Equal(Commission(EurUsd, 0.03m, 1.085m), newestEurUsd.GetProperty("commission").GetDecimal());
        Assert.Equal(Margin(EurUsd, 0.03m, 1.085m), newestEurUsd.GetProperty("margin_delta").GetDecimal());
    }

    [Fact]
    public async Task Orders_listing_keeps_only_orders_created_inside_from_and_to()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var order = await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.01m);
        var created = DateTimeOffset.Parse(order.GetProperty("executed_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        string At(DateTimeOffset t) => Uri.EscapeDataString(t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'"));

        var inside = (await api.GetAsync($"/api/orders?from={At(created)}&to={At(created.AddSeconds(1))}", token)).AssertSuccess(200);
        var before = (await api.GetAsync($"/api/orders?to={At(created)}", token)).AssertSuccess(200);
        var after = (await api.GetAsync($"/api/orders?from={At(created.AddTicks(10))}", token)).AssertSuccess(200);

        Assert.Equal([order.GetProperty("order_id").GetString()!], Ids(inside));
        Assert.Empty(Ids(before));
        Assert.Empty(Ids(after));
    }

    [Fact]
    public async Task Positions_listing_shows_open_and_closed_positions_with_unrealized_pnl()
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 50m);
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        await api.ExecutedOrderAsync(token, instrument.Symbol, "sell", 4m);
        await api.ExecutedOrderAsync(token, instrument.Symbol, "buy", 4m);
        await api.ExecutedOrderAsync(token, instrument.Symbol, "sell", 2m);
        await api.SetLastPriceAsync(instrument, 45m);

        var open = (await api.GetAsync($"/api/positions?status=open&symbol={instrument.Symbol}", token)).AssertSuccess(200);
        var closed = (await api.GetAsync("/api/positions?status=closed", token)).AssertSuccess(200);
        var firstOfAll = (await api.GetAsync("/api/positions?limit=1", token)).AssertSuccess(200);

        var position = Assert.Single(open.GetProperty("items").EnumerateArray());
        Assert.Equal("short", position.GetProperty("side").GetString());
        Assert.Equal(2m, position.GetProperty("quantity").GetDecimal());
        Assert.Equal(50m, position.GetProperty("avg_entry_price").GetDecimal());
        Assert.Equal(10m, position.GetProperty("used_margin").GetDecimal());
        Assert.Equal(45m, position.GetProperty("mark_price").GetDecimal());
        Assert.Equal(10m, position.GetProperty("unrealized_pnl").GetDecimal());
        Assert.Equal(0.1m, position.GetProperty("commission_paid").GetDecimal());
        var done = Assert.Single(closed.GetProperty("items").EnumerateArray());
        Assert.Equal(0m, done.GetProperty("quantity").GetDecimal());
        Assert.Equal(0m, done.GetProperty("unrealized_pnl").GetDecimal());
        Assert.Equal(0.4m, done.GetProperty("commission_paid").GetDecimal());
        Assert.Single(firstOfAll.GetProperty("items").EnumerateArray());
        Assert.Equal(JsonValueKind.String, firstOfAll.GetProperty("next_cursor").ValueKind);
    }

    [Fact]
    public async Task Trades_listing_enriches_fills_and_filters_profits_from_losses()
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 200m);
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var opening = await api.ExecutedOrderAsync(token, instrument.Symbol, "buy", 3m);
        await api.SetLastPriceAsync(instrument, 210m);
        var profit = await api.ExecutedOrderAsync(token, instrument.Symbol, "sell", 1m);
        await api.SetLastPriceAsync(instrument, 190m);
        var loss = await api.ExecutedOrderAsync(token, instrument.Symbol, "sell", 2m);

        var all = (await api.GetAsync($"/api/trades?symbol={instrument.Symbol}", token)).AssertSuccess(200);
        var profits = (await api.GetAsync("/api/trades?pnl=profit", token)).AssertSuccess(200);
        var losses = (await api.GetAsync("/api/trades?pnl=loss", token)).AssertSuccess(200);

        Assert.Equal(3, all.GetProperty("items").GetArrayLength());
        var won = Assert.Single(profits.GetProperty("items").EnumerateArray());
        Assert.Equal(profit.GetProperty("order_id").GetString(), won.GetProperty("order_id").GetString());
        Assert.Equal(10m, won.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal(210m, won.GetProperty("price").GetDecimal());
        Assert.Equal(0.21m, won.GetProperty("commission").GetDecimal());
        Assert.Equal("sell", won.GetProperty("side").GetString());
        Assert.Equal("market", won.GetProperty("order_type").GetString());
        Assert.Equal("executed", won.GetProperty("order_status").GetString());
        Assert.Equal(instrument.Description, won.GetProperty("instrument_description").GetString());
        Assert.Equal(1m, won.GetProperty("contract_size").GetDecimal());
        Assert.Equal(190m, won.GetProperty("mark_price").GetDecimal());
        Assert.Equal(opening.GetProperty("position").GetProperty("id").GetString(), won.GetProperty("position_id").GetString());
        Assert.Equal(JsonValueKind.Null, won.GetProperty("strategy_name").ValueKind);
        var lost = Assert.Single(losses.GetProperty("items").EnumerateArray());
        Assert.Equal(loss.GetProperty("order_id").GetString(), lost.GetProperty("order_id").GetString());
        Assert.Equal(-20m, lost.GetProperty("realized_pnl").GetDecimal());
    }

    private static List<string> Ids(JsonElement page) =>
        page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).ToList();
}
