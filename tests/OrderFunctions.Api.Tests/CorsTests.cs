using Microsoft.Extensions.Configuration;
using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Http;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// A browser frontend on its own origin: with Host__CORS set, LocalHost answers preflights for the allowed origins,
/// the API (on both hosts) exposes Idempotent-Replayed to them, and any other origin gets no CORS header at all.
/// Preflights and Access-Control-Allow-Origin are LocalHost's here: in Azure the Function App's platform CORS adds
/// them in front of the worker (infra tests check its configuration), and the worker test host has no such layer.
/// </summary>
public sealed class CorsTests(ApiFixture api) : IClassFixture<ApiFixture>, IAsyncLifetime
{
    private const string Frontend = "https://trade.contoso.example";
    private const string OtherFrontend = "http://localhost:5173";
    private const string Stranger = "https://evil.example";

    private TestApiHost _host = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _host = await TestApiHost.StartAsync(api.AppConnectionString, new Dictionary<string, string> { ["Host__CORS"] = $"{Frontend}, {OtherFrontend}" });
        _client = _host.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
    }

    [HostTheory(ApiHost.Local, "in Azure the platform's CORS answers preflights before the worker sees them")]
    [InlineData(Frontend)]
    [InlineData(OtherFrontend)]
    public async Task A_preflight_from_an_allowed_origin_allows_the_method_and_the_three_request_headers(string origin)
    {
        using var preflight = Preflight("/api/orders", origin, "POST", "authorization, content-type, idempotency-key");

        using var response = await _client.SendAsync(preflight);

        Assert.Equal(204, (int)response.StatusCode);
        Assert.Equal(origin, Single(response, "Access-Control-Allow-Origin"));
        Assert.Contains("POST", Single(response, "Access-Control-Allow-Methods")!.Split(',', StringSplitOptions.TrimEntries));
        var allowed = Single(response, "Access-Control-Allow-Headers")!.Split(',', StringSplitOptions.TrimEntries);
        Assert.All(Cors.AllowedRequestHeaders, h => Assert.Contains(h, allowed, StringComparer.OrdinalIgnoreCase));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Credentials"), "the token travels in a header: no credentials mode");
    }

    [Fact]
    public async Task An_order_from_an_allowed_origin_is_readable_and_its_replay_exposes_Idempotent_Replayed()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var key = Guid.NewGuid().ToString();

        using var first = await _client.SendAsync(Order(trader, key, Frontend));
        using var replay = await _client.SendAsync(Order(trader, key, Frontend));

        Assert.Equal(201, (int)first.StatusCode);
        Assert.Equal(200, (int)replay.StatusCode);
        Assert.Equal("true", Single(replay, Idempotency.ReplayedHeader));
        foreach (var response in new[] { first, replay })
        {
            if (_host.Kind == ApiHost.Local)
            {
                // The worker leaves Access-Control-Allow-Origin to the platform's CORS in front of it.
                Assert.Equal(Frontend, Single(response, "Access-Control-Allow-Origin"));
            }

            Assert.Contains(Idempotency.ReplayedHeader, Single(response, "Access-Control-Expose-Headers")!.Split(',', StringSplitOptions.TrimEntries));
        }
    }

    [Fact]
    public async Task An_origin_not_on_the_list_gets_no_cors_header_on_a_preflight_or_a_request()
    {
        var trader = await api.NewTraderAsync(10_000m);
        var key = Guid.NewGuid().ToString();
        await (await _client.SendAsync(Order(trader, key, Frontend))).Content.ReadAsStringAsync();

        using var preflight = await _client.SendAsync(Preflight("/api/orders", Stranger, "POST", "authorization, content-type, idempotency-key"));
        using var replay = await _client.SendAsync(Order(trader, key, Stranger));

        Assert.Equal("true", Single(replay, Idempotency.ReplayedHeader));
        foreach (var response in new[] { preflight, replay })
        {
            var cors = response.Headers.Concat(response.Content.Headers).Where(h => h.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase)).ToList();
            Assert.True(cors.Count == 0, $"{response.RequestMessage!.Method} from {Stranger} got {string.Join("; ", cors.Select(h => h.Key))}");
        }
    }

    [Fact]
    public async Task A_request_without_an_origin_gets_no_cors_header()
    {
        var result = await api.GetAsync("/api/health", token: null);

        Assert.DoesNotContain(result.Headers, h => h.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("*")]
    [InlineData("https://*.contoso.example")]
    [InlineData("https://trade.contoso.example/app")]
    [InlineData("trade.contoso.example")]
    public void Host_CORS_refuses_what_is_not_a_list_of_origins(string value)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [Cors.AllowedOriginsSetting] = value })
            .Build();

        var error = Assert.Throws<InvalidOperationException>(() => OrderFunctionsSettings.Load(configuration));

        Assert.Contains("Host__CORS", error.Message, StringComparison.Ordinal);
    }

    private static HttpRequestMessage Preflight(string path, string origin, string method, string headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        request.Headers.Add("Access-Control-Request-Headers", headers);
        return request;
    }

    private static HttpRequestMessage Order(Guid trader, string key, string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/orders")
        {
            Content = new StringContent($$"""{"symbol":"{{EurUsd.Symbol}}","side":"buy","type":"market","quantity":0.01}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ApiFixture.TokenFor(trader));
        request.Headers.Add("Idempotency-Key", key);
        request.Headers.Add("Origin", origin);
        return request;
    }

    private static string? Single(HttpResponseMessage response, string header) =>
        response.Headers.TryGetValues(header, out var values) ? string.Join(", ", values) : null;
}
