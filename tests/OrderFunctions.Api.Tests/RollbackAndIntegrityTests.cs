using OrderFunctions.Api.Tests.Support;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>POST /api/orders/{id}/rollback (admin) and GET /api/transactions/{id}/integrity.</summary>
public sealed class RollbackAndIntegrityTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    private static readonly string[] CheckNames =
        ["order_state", "fill_matches_order", "position_link", "audit_matches_order", "execution_log", "hash_chain", "audit_chain", "account_matches_ledger",
         "write_off_matches_order", "published_chain_head"];

    [Fact]
    public async Task Rollback_is_200_and_restores_balance_and_margin_exactly_when_the_order_executed()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var order = await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.5m);
        var orderId = order.GetProperty("order_id").GetString();

        var result = await RollbackAsync(orderId, "broker rejected the fill");

        var data = result.AssertSuccess(200);
        Assert.Equal(orderId, data.GetProperty("order_id").GetString());
        Assert.Equal("rolled_back", data.GetProperty("status").GetString());
        Assert.Equal(order.GetProperty("transaction_id").GetString(), data.GetProperty("executed_transaction_id").GetString());
        Assert.NotEqual(order.GetProperty("transaction_id").GetString(), data.GetProperty("transaction_id").GetString());
        Assert.Equal(1.085m, data.GetProperty("balance_delta").GetDecimal());
        Assert.Equal(-1_085m, data.GetProperty("margin_delta").GetDecimal());
        Assert.Equal(10_000m, data.GetProperty("account").GetProperty("balance").GetDecimal());
        Assert.Equal(0m, data.GetProperty("account").GetProperty("used_margin").GetDecimal());
        var stored = (await api.GetAsync($"/api/orders/{orderId}", token)).AssertSuccess(200);
        Assert.Equal("rolled_back", stored.GetProperty("status").GetString());
        Assert.Equal("broker rejected the fill", stored.GetProperty("failure_reason").GetString());
        Assert.Equal("closed", stored.GetProperty("position").GetProperty("status").GetString());
    }

    [Fact]
    public async Task Rollback_is_400_INVALID_ORDER_STATE_when_the_order_was_already_rolled_back()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var orderId = (await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.1m)).GetProperty("order_id").GetString();
        (await RollbackAsync(orderId, "first")).AssertSuccess(200);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await RollbackAsync(orderId, "second");

        result.AssertProblem(400, "INVALID_ORDER_STATE");
        Assert.Equal("rolled_back", result.Data.GetProperty("status").GetString());
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Rollback_is_400_INVALID_ORDER_STATE_when_the_order_was_rejected()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var rejected = await api.PlaceOrderAsync(token, new { symbol = Halted.Symbol, side = "buy", type = "market", quantity = 1m });
        rejected.AssertProblem(409, "INSTRUMENT_NOT_TRADABLE");

        var result = await RollbackAsync(rejected.Data.GetProperty("order_id").GetString(), "nothing to undo");

        result.AssertProblem(400, "INVALID_ORDER_STATE");
    }

    [Fact]
    public async Task Rollback_is_409_ROLLBACK_CONFLICT_and_changes_nothing_when_the_position_changed_since()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var first = await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.1m);
        await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.1m);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await RollbackAsync(first.GetProperty("order_id").GetString(), "too late");

        result.AssertProblem(409, "ROLLBACK_CONFLICT");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Rollback_is_404_ORDER_NOT_FOUND_when_no_order_has_the_id()
    {
        var missing = Guid.NewGuid();

        var result = await RollbackAsync(missing.ToString(), "nothing");

        result.AssertProblem(404, "ORDER_NOT_FOUND");
        Assert.Equal(missing.ToString(), result.Data.GetProperty("order_id").GetString());
    }

    [Fact]
    public async Task Integrity_is_valid_with_every_check_passing_after_an_execution()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var order = await api.ExecutedOrderAsync(token, Btc.Symbol, "sell", 0.002m);
        var transactionId = order.GetProperty("transaction_id").GetString();

        var result = await api.GetAsync($"/api/transactions/{transactionId}/integrity", token);

        var data = result.AssertSuccess(200);
        Assert.Equal(transactionId, data.GetProperty("transaction_id").GetString());
        Assert.Equal(order.GetProperty("order_id").GetString(), data.GetProperty("order_id").GetString());
        Assert.Equal("executed", data.GetProperty("order_status").GetString());
        Assert.True(data.GetProperty("valid").GetBoolean(), result.Text);
        var checks = data.GetProperty("checks").EnumerateArray().ToList();
        Assert.Equal(CheckNames, checks.Select(c => c.GetProperty("name").GetString()));
        Assert.All(checks, c => Assert.True(c.GetProperty("passed").GetBoolean()));
    }

    [Fact]
    public async Task Integrity_is_valid_for_the_rollback_transaction_of_a_rolled_back_order()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var order = await api.ExecutedOrderAsync(token, EurUsd.Symbol, "sell", 0.3m);
        var rollback = (await RollbackAsync(order.GetProperty("order_id").GetString(), "test")).AssertSuccess(200);

        var byExecution = await api.GetAsync($"/api/transactions/{order.GetProperty("transaction_id").GetString()}/integrity", token);
        var byRollback = await api.GetAsync($"/api/transactions/{rollback.GetProperty("transaction_id").GetString()}/integrity", token);

        foreach (var result in new[] { byExecution, byRollback })
        {
            var data = result.AssertSuccess(200);
            Assert.Equal("rolled_back", data.GetProperty("order_status").GetString());
            Assert.True(data.GetProperty("valid").GetBoolean(), result.Text);
        }
    }

    [Fact]
    public async Task Integrity_is_404_ORDER_NOT_FOUND_when_no_order_has_the_transaction()
    {
        var token = ApiFixture.TokenFor(await api.NewTraderAsync(100m));

        var result = await api.GetAsync($"/api/transactions/{Guid.NewGuid()}/integrity", token);

        result.AssertProblem(404, "ORDER_NOT_FOUND");
    }

    private Task<ApiResult> RollbackAsync(string? orderId, string reason) =>
        api.SendAsync(HttpMethod.Post, $"/api/orders/{orderId}/rollback", api.AdminToken, new { reason });
}
