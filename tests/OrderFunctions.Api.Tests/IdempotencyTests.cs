using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Handlers;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>The Idempotency-Key contract of POST /api/orders (Stripe, IETF Idempotency-Key draft).</summary>
public class IdempotencyTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    private static readonly object Order = new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.1m };

    [Fact]
    public async Task Replay_is_200_with_Idempotent_Replayed_and_the_same_data_when_key_and_payload_repeat()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();

        var first = await api.PlaceOrderAsync(token, Order, key);
        var replay = await api.PlaceOrderAsync(token, Order, key);

        first.AssertSuccess(201);
        Assert.Null(first.Header("Idempotent-Replayed"));
        replay.AssertSuccess(200);
        Assert.Equal("true", replay.Header("Idempotent-Replayed"));
        Assert.Equal(first.Data.GetRawText(), replay.Data.GetRawText());
        Assert.Equal(1, await api.CountAsync("FROM trading.orders WHERE user_id = $1", trader));
        Assert.Equal(1, await api.CountAsync("FROM trading.fills WHERE user_id = $1", trader));
    }

    [Fact]
    public async Task Replay_matches_when_the_same_order_is_spelt_differently()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();
        var headers = new Dictionary<string, string> { ["Idempotency-Key"] = key };

        var first = await api.SendRawAsync(HttpMethod.Post, "/api/orders", token,
            """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.1}""", "application/json", headers);
        var respelt = await api.SendRawAsync(HttpMethod.Post, "/api/orders", token,
            """{"quantity":"0.10","type":"market","side":"buy","symbol":"EURUSD"}""", "application/json; charset=utf-8", headers);

        first.AssertSuccess(201);
        respelt.AssertSuccess(200);
        Assert.Equal("true", respelt.Header("Idempotent-Replayed"));
        Assert.Equal(first.Data.GetRawText(), respelt.Data.GetRawText());
    }

    [Fact]
    public async Task Same_key_with_another_payload_is_422_IDEMPOTENCY_KEY_REUSED_and_changes_nothing()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();
        var first = (await api.PlaceOrderAsync(token, Order, key)).AssertSuccess(201);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.PlaceOrderAsync(token, new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.2m }, key);

        result.AssertProblem(422, "IDEMPOTENCY_KEY_REUSED");
        Assert.Equal(first.GetProperty("order_id").GetString(), result.Data.GetProperty("order_id").GetString());
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Reduce_only_false_is_the_same_order_as_none_and_reduce_only_true_another()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();
        (await api.PlaceOrderAsync(token, Order, key)).AssertSuccess(201);

        var spelt = await api.PlaceOrderAsync(token, new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.1m, reduce_only = false }, key);
        var flagged = await api.PlaceOrderAsync(token, new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.1m, reduce_only = true }, key);

        spelt.AssertSuccess(200);
        Assert.Equal("true", spelt.Header("Idempotent-Replayed"));
        flagged.AssertProblem(422, "IDEMPOTENCY_KEY_REUSED");
        Assert.Equal(1, await api.CountAsync("FROM trading.orders WHERE user_id = $1", trader));
    }

    [Fact]
    public async Task Keys_belong_to_one_trader_so_another_trader_may_use_the_same_key()
    {
        var first = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var second = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var key = Guid.NewGuid().ToString();

        var one = await api.PlaceOrderAsync(first, Order, key);
        var other = await api.PlaceOrderAsync(second, Order, key);

        one.AssertSuccess(201);
        other.AssertSuccess(201);
        Assert.NotEqual(one.Data.GetProperty("order_id").GetString(), other.Data.GetProperty("order_id").GetString());
    }

    [Fact]
    public async Task Missing_key_is_400_naming_Idempotency_Key_and_stores_nothing()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(HttpMethod.Post, "/api/orders", ApiFixture.TokenFor(trader), Order);

        result.AssertFieldError(400, "VALIDATION_ERROR", "Idempotency-Key");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Theory]
    [InlineData("/api/orders")]
    [InlineData("/api/admin/accounts/{trader}/deposits")]
    public async Task Two_Idempotency_Key_headers_are_400_naming_the_header_and_store_nothing(string route)
    {
        // Hosts hand Core a repeated header comma-joined ("a,b"): stored as one key it would match neither.
        var trader = await api.NewTraderAsync(10_000m);
        var before = await DatabaseState.CaptureAsync(api);
        using var request = new HttpRequestMessage(HttpMethod.Post, route.Replace("{trader}", trader.ToString(), StringComparison.Ordinal));
        request.Headers.Authorization = new("Bearer", route.Contains("admin", StringComparison.Ordinal) ? api.AdminToken : ApiFixture.TokenFor(trader));
        request.Headers.TryAddWithoutValidation("Idempotency-Key", "a");
        request.Headers.TryAddWithoutValidation("Idempotency-Key", "b");
        request.Content = new StringContent(route == "/api/orders" ? """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01}""" : """{"amount":5}""",
            System.Text.Encoding.UTF8, "application/json");
        using var client = api.CreateClient();

        using var response = await client.SendAsync(request);
        var result = await ApiResult.ReadAsync(response);

        result.AssertFieldError(400, "VALIDATION_ERROR", "Idempotency-Key");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Key_of_a_request_that_failed_validation_stays_free_for_the_corrected_request()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();

        // 0.015 is off the 0.01 step: judged by the database, before anything is stored.
        var invalid = await api.PlaceOrderAsync(token, new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.015m }, key);
        var corrected = await api.PlaceOrderAsync(token, new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.02m }, key);

        invalid.AssertFieldError(400, "VALIDATION_ERROR", "quantity");
        corrected.AssertSuccess(201);
    }

    [Fact]
    public async Task Business_rejection_is_stored_and_replayed_with_its_own_status()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();
        var order = new { symbol = Btc.Symbol, side = "buy", type = "limit", quantity = 0.01m, limit_price = 1m };

        var first = await api.PlaceOrderAsync(token, order, key);
        var replay = await api.PlaceOrderAsync(token, order, key);

        first.AssertProblem(409, "PRICE_NOT_MARKETABLE");
        replay.AssertProblem(409, "PRICE_NOT_MARKETABLE");
        Assert.Equal("true", replay.Header("Idempotent-Replayed"));
        Assert.Equal(first.Data.GetRawText(), replay.Data.GetRawText());
        Assert.Equal(1, await api.CountAsync("FROM trading.orders WHERE user_id = $1 AND idempotency_key = $2", trader, key));
    }

    [Fact]
    public async Task Retry_is_409_and_changes_nothing_while_the_order_for_its_key_is_still_executing()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var key = Guid.NewGuid().ToString();
        var fingerprint = OrdersHandler.Fingerprint(new OrdersHandler.OrderRequest(EurUsd.Symbol, "buy", "market", 0.1m, null, null, null, null, ReduceOnly: false));
        // As if the first request with this key were still running (IETF Idempotency-Key draft: 409 Conflict).
        await api.AdminExecuteAsync("""
            INSERT INTO trading.orders (user_id, symbol, side, type, quantity, status, transaction_id, idempotency_key, request_fingerprint)
            VALUES ($1, 'EURUSD', 'buy', 'market', 0.1, 'executing', gen_random_uuid(), $2, $3)
            """, trader, key, fingerprint);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.PlaceOrderAsync(ApiFixture.TokenFor(trader), Order, key);

        result.AssertProblem(409, "IDEMPOTENCY_KEY_IN_USE");
        Assert.Equal("executing", result.Data.GetProperty("status").GetString());
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Twenty_concurrent_identical_requests_execute_one_order_and_answer_the_same_data()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => api.PlaceOrderAsync(token, Order, key)));

        Assert.Equal(1, await api.CountAsync("FROM trading.orders WHERE user_id = $1", trader));
        Assert.Equal(1, await api.CountAsync("FROM trading.fills WHERE user_id = $1", trader));
        Assert.Single(results, r => r.Status == 201);
        Assert.All(results.Where(r => r.Status != 201), r =>
        {
            r.AssertSuccess(200);
            Assert.Equal("true", r.Header("Idempotent-Replayed"));
        });
        Assert.Single(results.Select(r => r.Data.GetRawText()).Distinct());
        var account = (await api.GetAsync("/api/accounts/me", token)).AssertSuccess(200);
        Assert.Equal(10_000m - Commission(EurUsd, 0.1m, 1.085m), account.GetProperty("balance").GetDecimal());
    }
}
