using System.Text.Json;
using OrderFunctions.Api.Tests.Support;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>POST /api/orders and GET /api/orders/{id}: executions with exact money, and every business rejection.</summary>
public class OrderExecutionTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Market_buy_is_201_with_exact_money_when_the_trader_is_funded()
    {
        var trader = await api.NewTraderAsync(10_000m);

        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(trader),
            new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.5m });

        var data = result.AssertSuccess(201);
        var commission = Commission(EurUsd, 0.5m, 1.085m);
        var margin = Margin(EurUsd, 0.5m, 1.085m);
        Assert.Equal(1.085m, commission);
        Assert.Equal(1085m, margin);
        Assert.True(Guid.TryParse(data.GetProperty("order_id").GetString(), out _));
        Assert.True(Guid.TryParse(data.GetProperty("transaction_id").GetString(), out _));
        Assert.Equal("executed", data.GetProperty("status").GetString());
        Assert.Equal("EURUSD", data.GetProperty("symbol").GetString());
        Assert.Equal("buy", data.GetProperty("side").GetString());
        Assert.Equal("market", data.GetProperty("type").GetString());
        Assert.Equal(0.5m, data.GetProperty("quantity").GetDecimal());
        Assert.Equal(JsonValueKind.Null, data.GetProperty("limit_price").ValueKind);
        Assert.Equal(1.085m, data.GetProperty("executed_price").GetDecimal());
        Assert.Equal(commission, data.GetProperty("commission").GetDecimal());
        Assert.Equal(0m, data.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal(margin, data.GetProperty("margin_delta").GetDecimal());
        Assert.True(DateTimeOffset.TryParse(data.GetProperty("executed_at").GetString(), out _));
        var position = data.GetProperty("position");
        Assert.Equal("long", position.GetProperty("side").GetString());
        Assert.Equal("open", position.GetProperty("status").GetString());
        Assert.Equal(0.5m, position.GetProperty("quantity").GetDecimal());
        Assert.Equal(1.085m, position.GetProperty("avg_entry_price").GetDecimal());
        Assert.Equal(margin, position.GetProperty("used_margin").GetDecimal());
        var account = data.GetProperty("account");
        Assert.Equal(10_000m - commission, account.GetProperty("balance").GetDecimal());
        Assert.Equal(9_998.915m, account.GetProperty("balance").GetDecimal());
        Assert.Equal(margin, account.GetProperty("used_margin").GetDecimal());
    }

    [Theory]
    [InlineData("0.0100000000000000000000000000000000000000")]
    [InlineData("\"0.0100000000000000000000000000000000000000\"")]
    [InlineData("1E-2")]
    [InlineData("\"+.01\"")]
    [InlineData("0.001e1")]
    public async Task Quantity_in_any_exact_spelling_of_0_01_executes_0_01_however_long_its_trailing_zeros(string quantity)
    {
        // Decimals are counted from the text: trailing zeros and exponents do not add any.
        var trader = await api.NewTraderAsync(10_000m);

        var result = await api.SendRawAsync(HttpMethod.Post, "/api/orders", ApiFixture.TokenFor(trader),
            $$"""{"symbol":"{{EurUsd.Symbol}}","side":"buy","type":"market","quantity":{{quantity}}}""", "application/json",
            new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() });

        Assert.Equal(0.01m, result.AssertSuccess(201).GetProperty("quantity").GetDecimal());
    }

    [Fact]
    public async Task Limit_sell_executes_at_the_last_price_when_the_limit_is_marketable()
    {
        var trader = await api.NewTraderAsync(100_000m);

        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(trader),
            new { symbol = Btc.Symbol, side = "sell", type = "limit", quantity = 0.01m, limit_price = 64_000m });

        var data = result.AssertSuccess(201);
        Assert.Equal(64_000m, data.GetProperty("limit_price").GetDecimal());
        Assert.Equal(65_000m, data.GetProperty("executed_price").GetDecimal());
        Assert.Equal(0.65m, data.GetProperty("commission").GetDecimal());
        Assert.Equal(65m, data.GetProperty("margin_delta").GetDecimal());
        Assert.Equal("short", data.GetProperty("position").GetProperty("side").GetString());
        Assert.Equal(99_999.35m, data.GetProperty("account").GetProperty("balance").GetDecimal());
        Assert.Equal(65m, data.GetProperty("account").GetProperty("used_margin").GetDecimal());
    }

    [Fact]
    public async Task Closing_a_position_realizes_its_pnl_into_the_balance_and_releases_its_margin()
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 100m);
        var trader = await api.NewTraderAsync(1_000m);
        var token = ApiFixture.TokenFor(trader);
        await api.ExecutedOrderAsync(token, instrument.Symbol, "buy", 2m);
        await api.SetLastPriceAsync(instrument, 110m);

        var result = await api.PlaceOrderAsync(token, new { symbol = instrument.Symbol, side = "sell", type = "market", quantity = 2m });

        var data = result.AssertSuccess(201);
        // (110 - 100) x 2 x 1 realized; commissions 0.2 on the buy and 0.22 on the sell; margin 20 released.
        Assert.Equal(20m, data.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal(0.22m, data.GetProperty("commission").GetDecimal());
        Assert.Equal(-20m, data.GetProperty("margin_delta").GetDecimal());
        Assert.Equal("closed", data.GetProperty("position").GetProperty("status").GetString());
        Assert.Equal(0m, data.GetProperty("position").GetProperty("quantity").GetDecimal());
        Assert.Equal(1_019.58m, data.GetProperty("account").GetProperty("balance").GetDecimal());
        Assert.Equal(0m, data.GetProperty("account").GetProperty("used_margin").GetDecimal());
    }

    [Fact]
    public async Task Get_order_returns_the_order_with_its_fill_and_position()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var executed = await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.25m);
        var orderId = executed.GetProperty("order_id").GetString();

        var result = await api.GetAsync($"/api/orders/{orderId}", token);

        var order = result.AssertSuccess(200);
        var commission = Commission(EurUsd, 0.25m, 1.085m);
        var margin = Margin(EurUsd, 0.25m, 1.085m);
        Assert.Equal(orderId, order.GetProperty("id").GetString());
        Assert.Equal(executed.GetProperty("transaction_id").GetString(), order.GetProperty("transaction_id").GetString());
        Assert.Equal("EURUSD", order.GetProperty("symbol").GetString());
        Assert.Equal("buy", order.GetProperty("side").GetString());
        Assert.Equal("market", order.GetProperty("type").GetString());
        Assert.Equal("executed", order.GetProperty("status").GetString());
        Assert.Equal(0.25m, order.GetProperty("quantity").GetDecimal());
        Assert.Equal(0.25m, order.GetProperty("filled_quantity").GetDecimal());
        Assert.Equal(JsonValueKind.Null, order.GetProperty("limit_price").ValueKind);
        Assert.Equal(1.085m, order.GetProperty("executed_price").GetDecimal());
        Assert.Equal(commission, order.GetProperty("commission").GetDecimal());
        Assert.Equal(0m, order.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal(-commission, order.GetProperty("balance_delta").GetDecimal());
        Assert.Equal(margin, order.GetProperty("margin_delta").GetDecimal());
        Assert.Equal(JsonValueKind.Null, order.GetProperty("failure_reason").ValueKind);
        Assert.Equal(JsonValueKind.Null, order.GetProperty("rolled_back_at").ValueKind);
        var fill = order.GetProperty("fill");
        Assert.True(Guid.TryParse(fill.GetProperty("id").GetString(), out _));
        Assert.Equal(0.25m, fill.GetProperty("quantity").GetDecimal());
        Assert.Equal(1.085m, fill.GetProperty("price").GetDecimal());
        Assert.Equal(commission, fill.GetProperty("commission").GetDecimal());
        Assert.Equal(0m, fill.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal("internal", fill.GetProperty("venue").GetString());
        var position = order.GetProperty("position");
        Assert.Equal(executed.GetProperty("position").GetProperty("id").GetString(), position.GetProperty("id").GetString());
        Assert.Equal(order.GetProperty("position_id").GetString(), position.GetProperty("id").GetString());
        Assert.Equal("EURUSD", position.GetProperty("symbol").GetString());
        Assert.Equal("long", position.GetProperty("side").GetString());
        Assert.Equal(0.25m, position.GetProperty("quantity").GetDecimal());
        Assert.Equal(margin, position.GetProperty("used_margin").GetDecimal());
        Assert.Equal(commission, position.GetProperty("commission_paid").GetDecimal());
    }

    [Fact]
    public async Task Get_order_is_404_ORDER_NOT_FOUND_when_no_order_has_the_id()
    {
        var trader = await api.NewTraderAsync(100m);
        var missing = Guid.NewGuid();

        var result = await api.GetAsync($"/api/orders/{missing}", ApiFixture.TokenFor(trader));

        result.AssertProblem(404, "ORDER_NOT_FOUND");
        Assert.Equal(missing.ToString(), result.Data.GetProperty("order_id").GetString());
    }

    [Fact]
    public async Task Order_is_404_USER_NOT_FOUND_and_stores_nothing_when_the_trader_has_no_account()
    {
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(Guid.NewGuid()),
            new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.01m });

        result.AssertProblem(404, "USER_NOT_FOUND");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Order_is_404_INSTRUMENT_NOT_FOUND_and_leaves_the_key_free_when_the_symbol_is_unknown()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();

        var result = await api.PlaceOrderAsync(token, new { symbol = "NOSUCH", side = "buy", type = "market", quantity = 1m }, key);
        var corrected = await api.PlaceOrderAsync(token, new { symbol = Btc.Symbol, side = "buy", type = "market", quantity = 0.001m }, key);

        result.AssertProblem(404, "INSTRUMENT_NOT_FOUND");
        Assert.Equal("NOSUCH", result.Data.GetProperty("symbol").GetString());
        corrected.AssertSuccess(201);
    }

    [Fact]
    public async Task Order_is_409_INSTRUMENT_NOT_TRADABLE_and_recorded_as_rejected_when_trading_is_halted()
    {
        var trader = await api.NewTraderAsync(1_000m);

        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(trader),
            new { symbol = Halted.Symbol, side = "buy", type = "market", quantity = 1m });

        result.AssertProblem(409, "INSTRUMENT_NOT_TRADABLE");
        await AssertRejectionRecordedAsync(trader, result, "INSTRUMENT_NOT_TRADABLE", balance: 1_000m);
    }

    [Fact]
    public async Task Order_is_400_INSUFFICIENT_BALANCE_when_the_commission_exceeds_the_balance()
    {
        var trader = await api.NewTraderAsync(1m);

        // 1 BTC at 65,000 pays 65 commission.
        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(trader),
            new { symbol = Btc.Symbol, side = "buy", type = "market", quantity = 1m });

        result.AssertProblem(400, "INSUFFICIENT_BALANCE");
        await AssertRejectionRecordedAsync(trader, result, "INSUFFICIENT_BALANCE", balance: 1m);
    }

    [Fact]
    public async Task Order_is_400_INSUFFICIENT_MARGIN_when_free_margin_cannot_cover_the_margin()
    {
        var trader = await api.NewTraderAsync(1_000m);

        // Commission 65 is affordable; margin 6,500 is not.
        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(trader),
            new { symbol = Btc.Symbol, side = "buy", type = "market", quantity = 1m });

        result.AssertProblem(400, "INSUFFICIENT_MARGIN");
        await AssertRejectionRecordedAsync(trader, result, "INSUFFICIENT_MARGIN", balance: 1_000m);
    }

    [Fact]
    public async Task Limit_buy_is_409_PRICE_NOT_MARKETABLE_when_the_limit_is_below_the_last_price()
    {
        var trader = await api.NewTraderAsync(100_000m);

        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(trader),
            new { symbol = Btc.Symbol, side = "buy", type = "limit", quantity = 0.01m, limit_price = 64_999.99m });

        result.AssertProblem(409, "PRICE_NOT_MARKETABLE");
        await AssertRejectionRecordedAsync(trader, result, "PRICE_NOT_MARKETABLE", balance: 100_000m);
    }

    /// <summary>A business rejection commits its audit trail (order, execution log, error log) but never money.</summary>
    private async Task AssertRejectionRecordedAsync(Guid trader, ApiResult result, string errorCode, decimal balance)
    {
        Assert.Equal("rejected", result.Data.GetProperty("status").GetString());
        var orderId = result.Data.GetProperty("order_id").GetString()!;
        var token = ApiFixture.TokenFor(trader);

        var order = (await api.GetAsync($"/api/orders/{orderId}", token)).AssertSuccess(200);
        var account = (await api.GetAsync("/api/accounts/me", token)).AssertSuccess(200);

        Assert.Equal("rejected", order.GetProperty("status").GetString());
        Assert.Equal(errorCode, order.GetProperty("error_code").GetString());
        Assert.Equal(0m, order.GetProperty("filled_quantity").GetDecimal());
        Assert.Equal(JsonValueKind.Null, order.GetProperty("fill").ValueKind);
        Assert.Equal(balance, account.GetProperty("balance").GetDecimal());
        Assert.Equal(0m, account.GetProperty("used_margin").GetDecimal());
        var id = Guid.Parse(orderId);
        Assert.Equal(1, await api.CountAsync("FROM trading.execution_logs WHERE order_id = $1 AND event = 'REJECTED'", id));
        Assert.Equal(1, await api.CountAsync("FROM trading.error_log WHERE order_id = $1 AND error_code = $2", id, errorCode));
        Assert.Equal(0, await api.CountAsync("FROM trading.balance_audit_log WHERE order_id = $1", id));
        Assert.Equal(0, await api.CountAsync("FROM trading.positions WHERE user_id = $1", trader));
    }
}
