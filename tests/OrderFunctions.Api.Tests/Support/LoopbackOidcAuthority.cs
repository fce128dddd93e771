using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>
/// An OIDC authority shaped like Microsoft Entra ID's v2.0 endpoint, served over real HTTP on a free 127.0.0.1 port:
/// <c>/{tenant}/v2.0/.well-known/openid-configuration</c> and the JWKS it points at, whose keys the test can change
/// while the API runs. It signs RS256 access tokens with the claims Entra puts in v2 tokens, and counts how often
/// each document was fetched.
/// </summary>
public sealed class LoopbackOidcAuthority : IAsyncDisposable
{
    /// <summary>The API app registration's client id: v2 access tokens carry it as <c>aud</c>.</summary>
    public static readonly Guid ApiClientId = Guid.Parse("7e0b3f4c-2d5a-4b8e-9c1f-0a6d5e4b3c21");

    /// <summary>The frontend's client id (<c>azp</c> of user tokens) and the automation's (<c>azp</c> of app-only tokens).</summary>
    public static readonly Guid FrontendClientId = Guid.Parse("3c9d1e2f-4a5b-4c6d-8e7f-9a0b1c2d3e4f");

    public static readonly Guid AutomationClientId = Guid.Parse("5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d");

    public const string TradeScope = "Orders.Trade";

    private readonly WebApplication _app;
    private readonly object _gate = new();
    private List<RsaSecurityKey> _published = [];
    private int _discoveryRequests;
    private int _jwksRequests;

    private LoopbackOidcAuthority(WebApplication app, Guid tenantId, string baseAddress)
    {
        _app = app;
        TenantId = tenantId;
        BaseAddress = baseAddress;
    }

    public Guid TenantId { get; }

    /// <summary>http://127.0.0.1:port</summary>
    public string BaseAddress { get; }

    /// <summary>What Auth__Authority names: <c>{base}/{tenant}/v2.0</c>, as Entra's <c>https://login.microsoftonline.com/{tenant}/v2.0</c>.</summary>
    public string Authority => IssuerOf(TenantId);

    public int DiscoveryRequests => Volatile.Read(ref _discoveryRequests);

    public int JwksRequests => Volatile.Read(ref _jwksRequests);

    /// <summary>The first key, published when the authority starts.</summary>
    public RsaSecurityKey CurrentKey { get; private set; } = null!;

    /// <summary>Entra's v2 issuer of a tenant: the same URL shape for every tenant, told apart only by the tenant id.</summary>
    public string IssuerOf(Guid tenant) => $"{BaseAddress}/{tenant}/v2.0";

    public static async Task<LoopbackOidcAuthority> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var tenant = Guid.NewGuid();
        LoopbackOidcAuthority? authority = null;
        app.MapGet("/{tenant}/v2.0/.well-known/openid-configuration", (string tenant) =>
        {
            Interlocked.Increment(ref authority!._discoveryRequests);
            return Results.Text(authority.Discovery(tenant).ToJsonString(), "application/json");
        });
        app.MapGet("/{tenant}/discovery/v2.0/keys", () =>
        {
            Interlocked.Increment(ref authority!._jwksRequests);
            return Results.Text(authority.Jwks().ToJsonString(), "application/json");
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        authority = new LoopbackOidcAuthority(app, tenant, address.TrimEnd('/'));
        authority.CurrentKey = NewKey();
        authority.Publish(authority.CurrentKey);
        return authority;
    }

    /// <summary>A new RSA key with a kid of its own, not published.</summary>
    public static RsaSecurityKey NewKey() => new(RSA.Create(2048)) { KeyId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12)) };

    /// <summary>Replaces the JWKS with these keys.</summary>
    public void Publish(params RsaSecurityKey[] keys)
    {
        lock (_gate)
        {
            _published = [.. keys];
        }
    }

    /// <summary>
    /// A delegated (user) v2 access token, as Entra issues it to the frontend for this API: <c>oid</c> is the user's
    /// object id, <c>sub</c> a pairwise string, <c>scp</c> the delegated scopes, <c>roles</c> the app roles assigned.
    /// </summary>
    public string UserToken(Guid oid, string? scopes = TradeScope, object? roles = null, RsaSecurityKey? key = null, Guid? tenant = null,
        IDictionary<string, object>? extraHeader = null, Action<Dictionary<string, object>>? edit = null)
    {
        var tid = tenant ?? TenantId;
        var claims = new Dictionary<string, object>
        {
            ["ver"] = "2.0",
            ["tid"] = tid.ToString(),
            ["oid"] = oid.ToString(),
            ["sub"] = PairwiseSubject(oid),
            ["azp"] = FrontendClientId.ToString(),
            ["azpacr"] = "0",
            ["name"] = "Test Trader",
            ["preferred_username"] = "trader@contoso.example",
            ["uti"] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
        };
        if (scopes is not null)
        {
            claims["scp"] = scopes;
        }

        if (roles is not null)
        {
            claims["roles"] = roles;
        }

        edit?.Invoke(claims);
        return Sign(claims, key, tid, extraHeader);
    }

    /// <summary>An app-only (client credentials) v2 access token: no <c>scp</c>; <c>sub</c> and <c>oid</c> are the service principal's object id.</summary>
    public string AppToken(Guid oid, object? roles = null, RsaSecurityKey? key = null, Action<Dictionary<string, object>>? edit = null)
    {
        var claims = new Dictionary<string, object>
        {
            ["ver"] = "2.0",
            ["tid"] = TenantId.ToString(),
            ["oid"] = oid.ToString(),
            ["sub"] = oid.ToString(),
            ["azp"] = AutomationClientId.ToString(),
            ["azpacr"] = "1",
            ["uti"] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
        };
        if (roles is not null)
        {
            claims["roles"] = roles;
        }

        edit?.Invoke(claims);
        return Sign(claims, key, TenantId, extraHeader: null);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private string Sign(Dictionary<string, object> claims, RsaSecurityKey? key, Guid tenant, IDictionary<string, object>? extraHeader)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = IssuerOf(tenant),
            Audience = ApiClientId.ToString(),
            Claims = claims,
            IssuedAt = now.AddMinutes(-1),
            NotBefore = now.AddMinutes(-1),
            Expires = now.AddHours(1),
            AdditionalHeaderClaims = extraHeader,
            SigningCredentials = new SigningCredentials(key ?? CurrentKey, SecurityAlgorithms.RsaSha256),
        });
    }

    // Entra's sub is unique per user AND application, and is not a GUID.
    private static string PairwiseSubject(Guid oid) =>
        Base64UrlEncoder.Encode(SHA256.HashData([.. oid.ToByteArray(), .. ApiClientId.ToByteArray()]))[..43];

    private JsonObject Discovery(string tenant) => new()
    {
        ["issuer"] = $"{BaseAddress}/{tenant}/v2.0",
        ["authorization_endpoint"] = $"{BaseAddress}/{tenant}/oauth2/v2.0/authorize",
        ["token_endpoint"] = $"{BaseAddress}/{tenant}/oauth2/v2.0/token",
        ["jwks_uri"] = $"{BaseAddress}/{tenant}/discovery/v2.0/keys",
        ["response_types_supported"] = new JsonArray("code", "id_token", "code id_token", "id_token token"),
        ["subject_types_supported"] = new JsonArray("pairwise"),
        ["id_token_signing_alg_values_supported"] = new JsonArray("RS256"),
        ["scopes_supported"] = new JsonArray("openid", "profile", "email", "offline_access"),
    };

    private JsonObject Jwks()
    {
        List<RsaSecurityKey> keys;
        lock (_gate)
        {
            keys = [.. _published];
        }

        return new JsonObject
        {
            ["keys"] = new JsonArray(keys.Select(k =>
            {
                var parameters = k.Rsa.ExportParameters(includePrivateParameters: false);
                return (JsonNode)new JsonObject
                {
                    ["kty"] = "RSA",
                    ["use"] = "sig",
                    ["kid"] = k.KeyId,
                    ["n"] = Base64UrlEncoder.Encode(parameters.Modulus),
                    ["e"] = Base64UrlEncoder.Encode(parameters.Exponent),
                };
            }).ToArray()),
        };
    }
}
