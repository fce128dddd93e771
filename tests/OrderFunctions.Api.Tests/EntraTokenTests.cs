using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// LocalHost configured as in Azure (Auth__Authority, Auth__TraderIdClaim=oid, Auth__RequiredScope=Orders.Trade)
/// against a real OIDC discovery document and JWKS on a loopback server, with RS256 tokens shaped like Entra ID's v2
/// access tokens. Runs on LocalHost only: it is about token validation, which both hosts share in Core.
/// </summary>
public sealed class EntraTokenTests(EntraFixture entra) : IClassFixture<EntraFixture>
{
    [Fact]
    public async Task A_user_token_with_the_scope_acts_as_the_trader_its_oid_names_not_its_sub()
    {
        var oid = await entra.NewTraderAsync(10_000m);
        var token = entra.Authority.UserToken(oid);

        var account = (await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", token)).AssertSuccess(200);
        var order = await entra.SendAsync(HttpMethod.Post, "/api/orders", token,
            new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.01m }, Guid.NewGuid().ToString());

        Assert.Equal(oid.ToString(), account.GetProperty("user_id").GetString());
        Assert.Equal(10_000m, account.GetProperty("balance").GetDecimal());
        order.AssertSuccess(201);
        Assert.Equal(1, await entra.AdminScalarAsync<long>("SELECT count(*) FROM trading.orders WHERE user_id = $1", oid));
    }

    [Fact]
    public async Task An_app_only_token_for_the_same_oid_is_403_insufficient_scope_on_trader_routes_and_changes_nothing()
    {
        var oid = await entra.NewTraderAsync(10_000m);
        // Client credentials: no scp; sub and oid are a GUID, the very id of a funded trader.
        var token = entra.Authority.AppToken(oid, roles: new[] { "orders.admin" });
        var before = await DatabaseState.CaptureAsync(entra);

        var account = await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", token);
        var order = await entra.SendAsync(HttpMethod.Post, "/api/orders", token,
            new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.01m }, Guid.NewGuid().ToString());

        foreach (var result in new[] { account, order })
        {
            result.AssertProblem(403, "FORBIDDEN");
            Assert.Equal("Bearer error=\"insufficient_scope\", scope=\"Orders.Trade\"", result.Header("WWW-Authenticate"));
        }

        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(entra));
    }

    [Fact]
    public async Task An_app_only_token_marked_idtyp_app_is_never_a_trader_even_with_the_scope_in_scp()
    {
        var oid = await entra.NewTraderAsync(100m);
        var token = entra.Authority.AppToken(oid, edit: c =>
        {
            c["idtyp"] = "app";
            c["scp"] = LoopbackOidcAuthority.TradeScope;
        });

        (await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", token)).AssertProblem(403, "FORBIDDEN");
    }

    [Theory]
    [InlineData("User.Read")]
    [InlineData("Orders.Trade.All")]
    [InlineData("")]
    public async Task A_user_token_without_the_scope_in_scp_is_403(string scopes)
    {
        var oid = await entra.NewTraderAsync(100m);

        var result = await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", entra.Authority.UserToken(oid, scopes));

        result.AssertProblem(403, "FORBIDDEN");
    }

    [Fact]
    public async Task The_scope_is_found_among_several_in_scp()
    {
        var oid = await entra.NewTraderAsync(100m);

        var result = await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", entra.Authority.UserToken(oid, "User.Read Orders.Trade openid"));

        result.AssertSuccess(200);
    }

    [Fact]
    public async Task A_token_from_another_tenants_issuer_is_401_although_the_same_keys_sign_it()
    {
        var oid = await entra.NewTraderAsync(100m);
        var otherTenant = Guid.NewGuid();

        var result = await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", entra.Authority.UserToken(oid, tenant: otherTenant));

        result.AssertProblem(401, "UNAUTHORIZED");
        Assert.Equal("Bearer", result.Header("WWW-Authenticate"));
    }

    [Fact]
    public async Task A_token_without_oid_is_401_even_when_its_sub_is_a_funded_traders_uuid()
    {
        var oid = await entra.NewTraderAsync(100m);
        var token = entra.Authority.UserToken(oid, edit: c =>
        {
            c.Remove("oid");
            c["sub"] = oid.ToString();
        });

        (await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", token)).AssertProblem(401, "UNAUTHORIZED");
    }

    [Fact]
    public async Task A_token_whose_header_lists_a_critical_extension_is_401()
    {
        var oid = await entra.NewTraderAsync(100m);
        var token = entra.Authority.UserToken(oid, extraHeader: new Dictionary<string, object>
        {
            ["crit"] = new[] { "urn:example:must-understand" },
            ["urn:example:must-understand"] = true,
        });

        var result = await entra.SendAsync(HttpMethod.Get, "/api/accounts/me", token);

        result.AssertProblem(401, "UNAUTHORIZED");
        Assert.Contains("crit", result.Root.GetProperty("error_message").GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, object> RolesThatGrantNothing => new()
    {
        { "a string", "orders.admin" },
        { "a nested array", new object[] { new[] { "orders.admin" } } },
        { "an array with a non-string", new object[] { "orders.admin", 1 } },
        { "an object", new Dictionary<string, object> { ["orders.admin"] = true } },
        { "another role", new[] { "orders.reader" } },
    };

    [Theory]
    [MemberData(nameof(RolesThatGrantNothing))]
    public async Task Admin_routes_are_403_when_roles_is(string shape, object roles)
    {
        var before = await DatabaseState.CaptureAsync(entra);
        var token = entra.Authority.AppToken(EntraFixture.AutomationObjectId, roles: roles);

        var result = await entra.SendAsync(HttpMethod.Post, $"/api/admin/accounts/{Guid.NewGuid()}/deposits", token, new { amount = 5m }, Guid.NewGuid().ToString());

        Assert.True(result.Status == 403, $"roles as {shape} answered {result.Status}: {result.Text}");
        result.AssertProblem(403, "FORBIDDEN");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(entra));
    }

    [Fact]
    public async Task A_user_assigned_the_admin_app_role_may_use_admin_routes()
    {
        var operatorToken = entra.Authority.UserToken(Guid.NewGuid(), roles: new[] { "orders.reader", "orders.admin" });

        var result = await entra.SendAsync(HttpMethod.Post, $"/api/admin/accounts/{Guid.NewGuid()}/deposits", operatorToken, new { amount = 5m }, Guid.NewGuid().ToString());

        result.AssertSuccess(201);
    }

    [Fact]
    public async Task A_new_signing_key_in_the_jwks_is_picked_up_without_a_restart()
    {
        var oid = await entra.NewTraderAsync(100m);
        await using var authority = await LoopbackOidcAuthority.StartAsync();
        await using var host = await TestApiHost.StartAsync(entra.AppConnectionString, EntraFixture.AzureAuthSettings(authority));
        using var client = host.CreateClient();
        (await EntraFixture.SendWithAsync(client, HttpMethod.Get, "/api/accounts/me", authority.UserToken(oid))).AssertSuccess(200);

        // The authority rolls over: a second key appears in the JWKS and new tokens are signed with it.
        var rolled = LoopbackOidcAuthority.NewKey();
        authority.Publish(authority.CurrentKey, rolled);
        var result = await EntraFixture.SendWithAsync(client, HttpMethod.Get, "/api/accounts/me", authority.UserToken(oid, key: rolled));

        result.AssertSuccess(200);
        Assert.Equal(2, authority.JwksRequests);
    }

    [Fact]
    public async Task Tokens_with_a_kid_the_jwks_lacks_are_401_and_refetch_the_jwks_at_most_once()
    {
        var oid = await entra.NewTraderAsync(100m);
        await using var authority = await LoopbackOidcAuthority.StartAsync();
        await using var host = await TestApiHost.StartAsync(entra.AppConnectionString, EntraFixture.AzureAuthSettings(authority));
        using var client = host.CreateClient();
        (await EntraFixture.SendWithAsync(client, HttpMethod.Get, "/api/accounts/me", authority.UserToken(oid))).AssertSuccess(200);

        // Twenty different tokens, each signed by a key of its own that the authority never published.
        for (var i = 0; i < 20; i++)
        {
            var result = await EntraFixture.SendWithAsync(client, HttpMethod.Get, "/api/accounts/me",
                authority.UserToken(oid, key: LoopbackOidcAuthority.NewKey()));
            result.AssertProblem(401, "UNAUTHORIZED");
        }

        // The first fetch, and one more for the first unknown kid: never one per token.
        Assert.Equal(2, authority.JwksRequests);
        (await EntraFixture.SendWithAsync(client, HttpMethod.Get, "/api/accounts/me", authority.UserToken(oid))).AssertSuccess(200);
    }

    [Fact]
    public async Task Trader_routes_are_503_while_the_authority_has_never_answered()
    {
        var oid = await entra.NewTraderAsync(100m);
        var authority = await LoopbackOidcAuthority.StartAsync();
        var token = authority.UserToken(oid);
        var settings = EntraFixture.AzureAuthSettings(authority);
        await authority.DisposeAsync();
        await using var host = await TestApiHost.StartAsync(entra.AppConnectionString, settings);
        using var client = host.CreateClient();

        var result = await EntraFixture.SendWithAsync(client, HttpMethod.Get, "/api/accounts/me", token);

        result.AssertProblem(503, "SERVICE_UNAVAILABLE");
    }

    [Theory]
    [InlineData("http://login.example.com/tenant/v2.0", "false", "loopback")]
    [InlineData("http://127.0.0.1:1/tenant/v2.0", "true", "https")]
    [InlineData("not a url", "true", "absolute")]
    public void The_validator_refuses_at_start_an_authority_it_would_fetch_insecurely(string authority, string requireHttps, string reason)
    {
        var settings = new AuthSettings
        {
            Issuer = "i",
            Audience = "a",
            SigningKey = "",
            Authority = authority,
            RequireHttpsMetadata = bool.Parse(requireHttps),
        };

        var error = Assert.Throws<InvalidOperationException>(() => new TokenValidator(settings));

        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }
}
