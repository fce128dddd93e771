using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using OrderFunctions.Core.Auth;
using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>
/// A test class's database (a clone of the migrated template) served by the host of this run (<see cref="ApiHosts"/>:
/// LocalHost on a test server, or the real Functions worker under the worker test host), the standard instruments
/// upserted through the admin route, and tokens signed with the test key.
/// </summary>
public class ApiFixture : DatabaseFixture
{
    public static readonly Guid AdminId = Guid.Parse("0a0a0a0a-0000-4000-8000-00000000ad01");

    private TestApiHost? _host;
    private HttpClient? _client;

    /// <summary>LocalHost's factory, for tests about LocalHost itself; on the Functions host there is none.</summary>
    public LocalHostFactory Factory => Host is LocalApiHost local
        ? local.Factory
        : throw new InvalidOperationException(
            $"ApiFixture.Factory is LocalHost's, and this run is on the Functions worker ({ApiHosts.Variable}=functions): use api.CreateClient() "
            + "or api.Host, or mark the test [HostFact(ApiHost.Local, reason)]");

    public string AdminToken { get; } = DevTokens.Create(LocalHostFactory.Auth, AdminId, admin: true);

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _host = await TestApiHost.StartAsync(HostConnectionString, HostSettings);
        _client = _host.CreateClient();
        var seeded = await SendAsync(HttpMethod.Put, "/api/admin/instruments", AdminToken, new { instruments = TestInstruments.All });
        seeded.AssertSuccess(200);
        await SeedAsync();
    }

    public override async Task DisposeAsync()
    {
        _client?.Dispose();
        try
        {
            if (_host is not null)
            {
                await _host.DisposeAsync();
            }
        }
        finally
        {
            await base.DisposeAsync();
        }
    }

    /// <summary>The connection string the host under test is given; a derived fixture may route it (e.g. through PgBouncer).</summary>
    protected virtual string HostConnectionString => AppConnectionString;

    /// <summary>More arrangement shared by every test of a class, after the instruments exist.</summary>
    protected virtual Task SeedAsync() => Task.CompletedTask;

    public static string TokenFor(Guid trader) => DevTokens.Create(LocalHostFactory.Auth, trader);

    public Task<ApiResult> GetAsync(string path, string? token) => SendAsync(HttpMethod.Get, path, token);

    private static readonly JsonSerializerOptions BodyOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Sends <paramref name="body"/> serialized as JSON with snake_case names.</summary>
    public Task<ApiResult> SendAsync(HttpMethod method, string path, string? token, object? body = null,
        IReadOnlyDictionary<string, string>? headers = null) =>
        SendRawAsync(method, path, token, body is null ? null : JsonSerializer.Serialize(body, BodyOptions), "application/json", headers);

    /// <summary>Sends <paramref name="body"/> exactly as given, with this Content-Type (none when null).</summary>
    public async Task<ApiResult> SendRawAsync(HttpMethod method, string path, string? token, string? body, string? contentType,
        IReadOnlyDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        if (body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            if (contentType is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }
        }

        using var response = await (_client ?? throw new InvalidOperationException("the fixture is not initialized")).SendAsync(request);
        try
        {
            return await ApiResult.ReadAsync(response);
        }
        catch (Xunit.Sdk.XunitException e) when (Host.Diagnostics().Length > 0)
        {
            throw new Xunit.Sdk.XunitException(e.Message + "\n" + Host.Diagnostics());
        }
    }

    /// <summary>POST /api/orders with an Idempotency-Key (a new one unless given).</summary>
    public Task<ApiResult> PlaceOrderAsync(string token, object order, string? idempotencyKey = null) =>
        SendAsync(HttpMethod.Post, "/api/orders", token, order,
            new Dictionary<string, string> { ["Idempotency-Key"] = idempotencyKey ?? Guid.NewGuid().ToString() });

    /// <summary>A market order that must execute; returns its data.</summary>
    public async Task<JsonElement> ExecutedOrderAsync(string token, string symbol, string side, decimal quantity)
    {
        var result = await PlaceOrderAsync(token, new { symbol, side, type = "market", quantity });
        return result.AssertSuccess(201);
    }

    /// <summary>A new trader whose account was opened by an admin deposit.</summary>
    public async Task<Guid> NewTraderAsync(decimal deposit)
    {
        var trader = Guid.NewGuid();
        var result = await SendAsync(HttpMethod.Post, $"/api/admin/accounts/{trader}/deposits", AdminToken, new { amount = deposit },
            new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() });
        result.AssertSuccess(201);
        return trader;
    }

    /// <summary>Changes an instrument's last price (an admin upsert of the full row).</summary>
    public async Task SetLastPriceAsync(Instrument instrument, decimal lastPrice)
    {
        var result = await SendAsync(HttpMethod.Put, "/api/admin/instruments", AdminToken,
            new { instruments = new[] { instrument with { LastPrice = lastPrice } } });
        result.AssertSuccess(200);
    }

    /// <summary>An instrument of one test's own (a unique symbol), so moving its price disturbs no other test.</summary>
    public async Task<Instrument> NewInstrumentAsync(decimal lastPrice, decimal contractSize = 1m, decimal marginRate = 0.1m,
        decimal commissionRate = 0.001m)
    {
        var symbol = "T" + Guid.NewGuid().ToString("N")[..12].ToUpperInvariant();
        var instrument = new Instrument(symbol, "Test instrument " + symbol, contractSize, marginRate, commissionRate, 0.01m, 0.01m, 0.01m,
            lastPrice, true);
        var result = await SendAsync(HttpMethod.Put, "/api/admin/instruments", AdminToken, new { instruments = new[] { instrument } });
        result.AssertSuccess(200);
        return instrument;
    }

    /// <summary>How many rows of a table match, read as admin past row-level security; parameters bind to $1, $2, ...</summary>
    public async Task<long> CountAsync(string sqlFromWhere, params object?[] parameters) =>
        await AdminScalarAsync<long>("SELECT count(*) " + sqlFromWhere, parameters);

    /// <summary>The host serving this class: LocalHost or the Functions worker (<see cref="ApiHosts.Current"/>).</summary>
    public TestApiHost Host => _host ?? throw new InvalidOperationException("the fixture is not initialized");

    /// <summary>Settings a fixture adds to the host's (e.g. a telemetry exporter); none by default.</summary>
    protected virtual IReadOnlyDictionary<string, string>? HostSettings => null;

    /// <summary>A client of this class's host, for requests the helpers above cannot shape (chunked bodies, raw headers).</summary>
    public HttpClient CreateClient() => Host.CreateClient();

    /// <summary>Another host of this run's kind on a database of the caller's choice, e.g. one that is unreachable.</summary>
    public static Task<TestApiHost> StartHostAsync(string connectionString, IReadOnlyDictionary<string, string>? overrides = null) =>
        TestApiHost.StartAsync(connectionString, overrides);

    /// <summary>PUT /api/admin/prices for one instrument, as a price feed sends it; returns its data (with data.risk).</summary>
    public async Task<JsonElement> SetPriceAsync(string symbol, decimal price)
    {
        var result = await SendAsync(HttpMethod.Put, "/api/admin/prices", AdminToken, new { prices = new[] { new { symbol, price } } });
        return result.AssertSuccess(200);
    }

    /// <summary>An order that must execute with these stops; returns its data.</summary>
    public async Task<JsonElement> ExecutedOrderWithStopsAsync(string token, string symbol, string side, decimal quantity, decimal? stopLoss, decimal? takeProfit)
    {
        var result = await PlaceOrderAsync(token, new { symbol, side, type = "market", quantity, stop_loss = stopLoss, take_profit = takeProfit });
        return result.AssertSuccess(201);
    }
}
