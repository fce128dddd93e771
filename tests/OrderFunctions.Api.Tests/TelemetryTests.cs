using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Telemetry;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// What operators see of one order, on either host: one request span (LocalHost: ASP.NET Core's; the Functions app:
/// the worker's invocation span, a child of the host's request), Npgsql's database spans beneath it, the order and
/// the trader as attributes, and no token, key, password or connection string anywhere in what is exported.
/// </summary>
public sealed class TelemetryTests(TracingApiFixture api) : IClassFixture<TracingApiFixture>
{
    [Fact]
    public async Task One_order_is_one_request_span_with_database_child_spans_the_order_and_the_trader_and_no_secret()
    {
        var trader = await api.NewTraderAsync(100_000m);
        var token = ApiFixture.TokenFor(trader);

        var (result, trace) = await api.TracedAsync(HttpMethod.Post, "/api/orders", token,
            new { symbol = TestInstruments.EurUsd.Symbol, side = "buy", type = "market", quantity = 0.01m },
            new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() });
        var orderId = result.AssertSuccess(201).GetProperty("order_id").GetString();

        Assert.Single(trace.Spans, api.IsEntry);
        Assert.Equal(trader.ToString(), trace.Entry.Attributes.GetValueOrDefault(OrderTelemetry.TraderAttribute));
        Assert.Equal(orderId, trace.Entry.Attributes.GetValueOrDefault(OrderTelemetry.OrderAttribute));
        var database = Assert.Single(trace.DatabaseCommands);
        Assert.Equal(api.DatabaseName, database.Attributes.GetValueOrDefault("db.namespace"));
        Assert.Contains("execute_order", database.Attributes.GetValueOrDefault("db.query.text") ?? "", StringComparison.Ordinal);
        if (api.HostRequestSpanId(trace) is { } hostSpan)
        {
            // The worker's invocation span hangs under the span the host started for the HTTP request.
            Assert.Equal(hostSpan, trace.Entry.ParentSpanId);
        }

        var secrets = new[] { token, LocalHostFactory.Auth.SigningKey, "Password=", "password=", "orders_app_local", api.AppConnectionString };
        foreach (var span in trace.Spans)
        {
            foreach (var value in span.AllValues)
            {
                Assert.All(secrets, secret => Assert.DoesNotContain(secret, value, StringComparison.Ordinal));
            }
        }
    }

    [Fact]
    public async Task Request_without_a_caller_names_no_trader()
    {
        var (result, trace) = await api.TracedAsync(HttpMethod.Get, "/api/accounts/me", token: "not-a-token");

        result.AssertProblem(401, "UNAUTHORIZED");
        Assert.False(trace.Entry.Attributes.ContainsKey(OrderTelemetry.TraderAttribute));
    }
}
