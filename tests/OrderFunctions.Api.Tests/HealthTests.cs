using System.Net;
using System.Text.Json;
using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Handlers;
using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests;

public sealed class HealthTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Health_shows_anonymous_callers_the_status_only()
    {
        var result = await api.GetAsync("/api/health", token: null);

        var data = result.AssertSuccess(200);
        Assert.Equal("""{"status":"healthy"}""", data.GetRawText());
    }

    [Fact]
    public async Task Health_shows_a_trader_and_a_caller_with_a_bad_token_the_status_only()
    {
        var trader = await api.GetAsync("/api/health", ApiFixture.TokenFor(Guid.NewGuid()));
        var forged = await api.GetAsync("/api/health", api.AdminToken + "x");

        Assert.Equal("""{"status":"healthy"}""", trader.AssertSuccess(200).GetRawText());
        Assert.Equal("""{"status":"healthy"}""", forged.AssertSuccess(200).GetRawText());
    }

    [Fact]
    public async Task Health_shows_an_admin_the_schema_version_and_pool_when_the_database_answers()
    {
        var result = await api.GetAsync("/api/health", api.AdminToken);

        var data = result.AssertSuccess(200);
        Assert.Equal("healthy", data.GetProperty("status").GetString());
        var database = data.GetProperty("database");
        Assert.True(database.GetProperty("reachable").GetBoolean());
        var expectedVersion = await api.AdminScalarAsync<string>(
            "SELECT version FROM evolve.changelog WHERE success AND name LIKE 'V%' ORDER BY id DESC LIMIT 1");
        Assert.Equal(expectedVersion, database.GetProperty("schema_version").GetString());
        Assert.False(string.IsNullOrEmpty(database.GetProperty("server_version").GetString()));
        Assert.True(database.GetProperty("round_trip_ms").GetDecimal() >= 0);
        var pool = data.GetProperty("pool");
        Assert.Equal(JsonValueKind.Object, pool.ValueKind);
        Assert.True(pool.GetProperty("connection_max").GetInt64() > 0, result.Text);
        Assert.True(pool.GetProperty("connection_count_used").GetInt64() >= 0, result.Text);
        Assert.True(pool.GetProperty("connection_count_idle").GetInt64() >= 0, result.Text);
    }

    [Fact]
    public async Task Health_is_503_with_the_envelope_when_the_database_is_unreachable()
    {
        await using var unreachable = await UnreachableDatabaseAsync();
        using var client = unreachable.CreateClient();

        using var response = await client.GetAsync(new Uri("/api/health", UriKind.Relative));
        var result = await ApiResult.ReadAsync(response);

        result.AssertProblem(503, "SERVICE_UNAVAILABLE");
        Assert.Equal("""{"status":"unhealthy"}""", result.Data.GetRawText());
    }

    [Fact]
    public async Task Health_answers_503_within_its_bound_when_new_connections_hang_as_with_a_stopped_postmaster()
    {
        // The proxy accepts connections and never answers them, as a SIGSTOPped postmaster does (the kernel still
        // completes the handshake). With a cold pool the probe has no connection that works.
        await using var proxy = PostgresProxy.Start(api.AppConnectionString);
        await using var host = await ApiFixture.StartHostAsync(proxy.ConnectionString);
        using var client = host.CreateClient();
        proxy.StallNewConnections();
        var clock = System.Diagnostics.Stopwatch.StartNew();

        using var response = await client.GetAsync(new Uri("/api/health", UriKind.Relative));
        var elapsed = clock.Elapsed;
        var result = await ApiResult.ReadAsync(response);

        result.AssertProblem(503, "SERVICE_UNAVAILABLE");
        Assert.True(elapsed < HealthHandler.Budget + TimeSpan.FromSeconds(1.5), $"the probe answered after {elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public async Task Health_stays_200_while_new_connections_hang_but_the_pooled_ones_still_work()
    {
        // The chosen behaviour: an instance that can still serve from its pool is not failed by its probe.
        await using var proxy = PostgresProxy.Start(api.AppConnectionString);
        await using var host = await ApiFixture.StartHostAsync(proxy.ConnectionString);
        using var client = host.CreateClient();
        (await ApiResult.ReadAsync(await client.GetAsync(new Uri("/api/health", UriKind.Relative)))).AssertSuccess(200);
        proxy.StallNewConnections();

        using var response = await client.GetAsync(new Uri("/api/health", UriKind.Relative));

        (await ApiResult.ReadAsync(response)).AssertSuccess(200);
    }

    [Fact]
    public async Task Trader_route_is_503_SERVICE_UNAVAILABLE_without_internals_when_the_database_is_unreachable()
    {
        await using var unreachable = await UnreachableDatabaseAsync();
        using var client = unreachable.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/accounts/me");
        request.Headers.Authorization = new("Bearer", ApiFixture.TokenFor(Guid.NewGuid()));

        using var response = await client.SendAsync(request);
        var result = await ApiResult.ReadAsync(response);

        result.AssertProblem(503, "SERVICE_UNAVAILABLE");
    }

    /// <summary>This run's host with a connection string that points at a port nothing listens on; one attempt, no retries.</summary>
    private static Task<TestApiHost> UnreachableDatabaseAsync() => ApiFixture.StartHostAsync(
        $"Host=127.0.0.1;Port={Commands.FreeLoopbackPort()};Database=orders;Username=orders_app;Password=none;Timeout=2",
        new Dictionary<string, string> { ["Database__MaxRetries"] = "0" });
}
