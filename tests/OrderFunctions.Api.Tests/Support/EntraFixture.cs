using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>
/// The host of this run (LocalHost or the Functions worker) configured as Azure configures it (Auth__Authority, Auth__TraderIdClaim=oid,
/// Auth__RequiredScope=Orders.Trade) against a <see cref="LoopbackOidcAuthority"/> of its own, on a database of its
/// own, with the standard instruments upserted by an app-only admin token.
/// </summary>
public class EntraFixture : DatabaseFixture
{
    public static readonly Guid AutomationObjectId = Guid.Parse("a0a0a0a0-0000-4000-8000-0000000000a1");

    private TestApiHost? _host;
    private HttpClient? _client;

    public LoopbackOidcAuthority Authority { get; private set; } = null!;

    /// <summary>An app-only token of the automation's service principal, assigned the orders.admin app role.</summary>
    public string AdminToken { get; private set; } = "";

    /// <summary>The settings Azure gives the app (infra/main.bicep), pointing at the loopback authority.</summary>
    public static Dictionary<string, string> AzureAuthSettings(LoopbackOidcAuthority authority) => new(StringComparer.Ordinal)
    {
        ["Auth__Issuer"] = authority.Authority,
        ["Auth__Audience"] = LoopbackOidcAuthority.ApiClientId.ToString(),
        ["Auth__SigningKey"] = "",
        ["Auth__Authority"] = authority.Authority,
        ["Auth__TraderIdClaim"] = "oid",
        ["Auth__RequiredScope"] = LoopbackOidcAuthority.TradeScope,
        // Plain HTTP is accepted for a loopback authority only; the tests' authority is one.
        ["Auth__RequireHttpsMetadata"] = "false",
    };

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Authority = await LoopbackOidcAuthority.StartAsync();
        AdminToken = Authority.AppToken(AutomationObjectId, roles: new[] { "orders.admin" });
        _host = await TestApiHost.StartAsync(AppConnectionString, AzureAuthSettings(Authority));
        _client = _host.CreateClient();
        (await SendAsync(HttpMethod.Put, "/api/admin/instruments", AdminToken, new { instruments = TestInstruments.All })).AssertSuccess(200);
    }

    public override async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        if (Authority is not null)
        {
            await Authority.DisposeAsync();
        }

        await base.DisposeAsync();
    }

    /// <summary>A trader whose account an admin opened with a deposit; the id is the user's Entra object id.</summary>
    public async Task<Guid> NewTraderAsync(decimal deposit)
    {
        var oid = Guid.NewGuid();
        (await SendAsync(HttpMethod.Post, $"/api/admin/accounts/{oid}/deposits", AdminToken, new { amount = deposit }, Guid.NewGuid().ToString())).AssertSuccess(201);
        return oid;
    }

    private static readonly JsonSerializerOptions BodyOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public Task<ApiResult> SendAsync(HttpMethod method, string path, string? token, object? body = null, string? idempotencyKey = null) =>
        SendWithAsync(_client ?? throw new InvalidOperationException("the fixture is not initialized"), method, path, token, body, idempotencyKey);

    public static async Task<ApiResult> SendWithAsync(HttpClient client, HttpMethod method, string path, string? token, object? body = null,
        string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body, BodyOptions), Encoding.UTF8, "application/json");
        }

        using var response = await client.SendAsync(request);
        return await ApiResult.ReadAsync(response);
    }
}
