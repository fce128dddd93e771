using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using OrderFunctions.Api.Tests.Support;

namespace OrderFunctions.Api.Tests;

public sealed class HealthTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Health_reports_the_schema_version_and_pool_when_the_database_answers()
    {
        var result = await api.GetAsync("/api/health", token: null);

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
        Assert.Equal("unhealthy", result.Data.GetProperty("status").GetString());
        Assert.False(result.Data.GetProperty("database").GetProperty("reachable").GetBoolean());
        Assert.Equal(JsonValueKind.Object, result.Data.GetProperty("pool").ValueKind);
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

    /// <summary>This run's host with a connection string that points at a closed port; one attempt, no retries.</summary>
    private static Task<TestApiHost> UnreachableDatabaseAsync() => ApiFixture.StartHostAsync(
        $"Host=127.0.0.1;Port={ClosedPort()};Database=orders;Username=orders_app;Password=none;Timeout=2",
        new Dictionary<string, string> { ["Database__MaxRetries"] = "0" });

    /// <summary>A port nothing listens on: bound by the OS, then released.</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
