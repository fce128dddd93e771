using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>Identity is a validated bearer JWT: who may call what, and whose rows they see.</summary>
public class AuthTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    private static readonly Guid Someone = Guid.Parse("5e5e5e5e-0000-4000-8000-000000000001");

    public static TheoryData<string> UnauthenticatedCallers => new(UnauthenticatedHeaders.Keys);

    private static Dictionary<string, string?> UnauthenticatedHeaders { get; } = new()
    {
        ["no Authorization header"] = null,
        ["a Basic credential"] = "Basic dXNlcjpwYXNz",
        ["Bearer with no token"] = "Bearer ",
        ["a token that is not a JWT"] = "Bearer not-a-jwt",
        ["a token signed with another key"] = Bearer(LocalHostFactory.Auth with { SigningKey = "another-signing-key-of-at-least-32-bytes!!" }),
        ["a token for another audience"] = Bearer(LocalHostFactory.Auth with { Audience = "api://someone-else" }),
        ["a token from another issuer"] = Bearer(LocalHostFactory.Auth with { Issuer = "https://issuer.elsewhere.invalid/" }),
        ["an expired token"] = "Bearer " + DevTokens.Create(LocalHostFactory.Auth, Someone, lifetime: TimeSpan.FromMinutes(5),
            now: DateTime.UtcNow.AddHours(-1)),
        ["a token whose sub is not a UUID"] = "Bearer " + SignedTokenWithoutUuidSubject(),
    };

    public static TheoryData<string, string> AdminRoutes => new()
    {
        { "PUT", "/api/admin/instruments" },
        { "POST", $"/api/admin/accounts/{Someone}/deposits" },
        { "POST", "/api/admin/positions/sync" },
        { "POST", "/api/admin/maintenance/orphan-scan" },
        { "POST", $"/api/orders/{Someone}/rollback" },
    };

    [Theory]
    [MemberData(nameof(UnauthenticatedCallers))]
    public async Task Trader_route_is_401_UNAUTHORIZED_with_WWW_Authenticate_for(string caller)
    {
        var before = await DatabaseState.CaptureAsync(api);
        var headers = UnauthenticatedHeaders[caller] is { } authorization
            ? new Dictionary<string, string> { ["Authorization"] = authorization, ["Idempotency-Key"] = Guid.NewGuid().ToString() }
            : new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() };

        var order = await api.SendAsync(HttpMethod.Post, "/api/orders", token: null,
            new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.01m }, headers);
        var account = await api.SendAsync(HttpMethod.Get, "/api/accounts/me", token: null, headers: headers);

        foreach (var result in new[] { order, account })
        {
            result.AssertProblem(401, "UNAUTHORIZED");
            Assert.Equal("Bearer", result.Header("WWW-Authenticate"));
        }

        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Admin_route_is_401_UNAUTHORIZED_without_a_token()
    {
        var result = await api.SendAsync(HttpMethod.Put, "/api/admin/instruments", token: null, new { instruments = All });

        result.AssertProblem(401, "UNAUTHORIZED");
        Assert.Equal("Bearer", result.Header("WWW-Authenticate"));
    }

    [Theory]
    [MemberData(nameof(AdminRoutes))]
    public async Task Admin_route_is_403_FORBIDDEN_for_a_trader_token(string method, string path)
    {
        var trader = await api.NewTraderAsync(100m);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(new HttpMethod(method), path, ApiFixture.TokenFor(trader), new { reason = "not allowed" });

        result.AssertProblem(403, "FORBIDDEN");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Another_traders_order_is_404_ORDER_NOT_FOUND()
    {
        var owner = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var stranger = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var order = await api.ExecutedOrderAsync(owner, EurUsd.Symbol, "buy", 0.01m);

        var result = await api.GetAsync($"/api/orders/{order.GetProperty("order_id").GetString()}", stranger);

        result.AssertProblem(404, "ORDER_NOT_FOUND");
    }

    [Fact]
    public async Task Another_traders_transaction_is_404_ORDER_NOT_FOUND()
    {
        var owner = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var stranger = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var order = await api.ExecutedOrderAsync(owner, EurUsd.Symbol, "buy", 0.01m);

        var result = await api.GetAsync($"/api/transactions/{order.GetProperty("transaction_id").GetString()}/integrity", stranger);

        result.AssertProblem(404, "ORDER_NOT_FOUND");
    }

    [Fact]
    public async Task Listings_show_none_of_another_traders_rows()
    {
        var owner = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        var stranger = ApiFixture.TokenFor(await api.NewTraderAsync(10_000m));
        await api.ExecutedOrderAsync(owner, EurUsd.Symbol, "buy", 0.01m);

        foreach (var path in new[] { "/api/orders", "/api/positions", "/api/trades" })
        {
            var data = (await api.GetAsync(path, stranger)).AssertSuccess(200);
            Assert.Equal(0, data.GetProperty("items").GetArrayLength());
        }
    }

    [Fact]
    public async Task Identity_comes_from_the_token_and_never_from_other_headers()
    {
        var trader = await api.NewTraderAsync(1_234m);
        var other = await api.NewTraderAsync(9_999m);
        var headers = new Dictionary<string, string> { ["X-User-Id"] = other.ToString(), ["X-MS-CLIENT-PRINCIPAL-ID"] = other.ToString() };

        var result = await api.SendAsync(HttpMethod.Get, "/api/accounts/me", ApiFixture.TokenFor(trader), headers: headers);

        var account = result.AssertSuccess(200);
        Assert.Equal(trader.ToString(), account.GetProperty("user_id").GetString());
        Assert.Equal(1_234m, account.GetProperty("balance").GetDecimal());
    }

    [Fact]
    public async Task Health_needs_no_token()
    {
        var result = await api.GetAsync("/api/health", token: null);

        result.AssertSuccess(200);
    }

    private static string Bearer(AuthSettings settings) => "Bearer " + DevTokens.Create(settings, Someone);

    /// <summary>A correctly signed token whose subject is not a trader id.</summary>
    private static string SignedTokenWithoutUuidSubject()
    {
        var handler = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler();
        var key = new Microsoft.IdentityModel.Tokens.SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(LocalHostFactory.Auth.SigningKey));
        return handler.CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
        {
            Issuer = LocalHostFactory.Auth.Issuer,
            Audience = LocalHostFactory.Auth.Audience,
            Claims = new Dictionary<string, object> { ["sub"] = "trader-without-uuid" },
            Expires = DateTime.UtcNow.AddHours(1),
            SigningCredentials = new Microsoft.IdentityModel.Tokens.SigningCredentials(key, Microsoft.IdentityModel.Tokens.SecurityAlgorithms.HmacSha256),
        });
    }
}
