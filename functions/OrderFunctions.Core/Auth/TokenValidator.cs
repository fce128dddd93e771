using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Core.Auth;

/// <summary>The authenticated caller: the trader's id from <c>sub</c>, and whether <c>roles</c> grants admin.</summary>
public sealed record Caller(Guid UserId, bool IsAdmin);

/// <summary>
/// Validates bearer JWTs: signature, issuer, audience and lifetime. Locally the key is the UTF-8 bytes of
/// Auth__SigningKey (HS256); in Azure the signing keys come from the OIDC authority's metadata.
/// Identity never comes from any other header or from the body.
/// </summary>
public sealed class TokenValidator
{
    public const string AdminRole = "orders.admin";
    public const int MinimumKeyBytes = 32;

    private const int CacheCapacity = 10_000;
    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(5);

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters _parameters;
    private readonly TimeProvider _clock;

    // A client sends the same token with every request; checking its signature and claims once per few
    // minutes, not per request, takes the JWT work off the hot path. An entry lives until the token expires
    // or five minutes pass (so a revoked signing key stops working within five minutes).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (Caller Caller, DateTimeOffset Until)> _validated =
        new(StringComparer.Ordinal);

    public TokenValidator(AuthSettings settings, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _clock = clock ?? TimeProvider.System;
        if (string.IsNullOrWhiteSpace(settings.Issuer) || string.IsNullOrWhiteSpace(settings.Audience))
        {
            throw new InvalidOperationException("Auth__Issuer and Auth__Audience must be set.");
        }

        _parameters = new TokenValidationParameters
        {
            ValidIssuer = settings.Issuer,
            ValidAudience = settings.Audience,
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = TimeSpan.FromSeconds(30),
        };

        if (!string.IsNullOrWhiteSpace(settings.Authority))
        {
            var metadata = settings.Authority.TrimEnd('/') + "/.well-known/openid-configuration";
            _parameters.ConfigurationManager = new ConfigurationManager<OpenIdConnectConfiguration>(
                metadata, new OpenIdConnectConfigurationRetriever(), new HttpDocumentRetriever { RequireHttps = true });
            _parameters.ValidAlgorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];
        }
        else
        {
            var key = Encoding.UTF8.GetBytes(settings.SigningKey ?? "");
            if (key.Length < MinimumKeyBytes)
            {
                throw new InvalidOperationException(
                    $"Auth__SigningKey must be at least {MinimumKeyBytes} bytes of UTF-8 (or set Auth__Authority for OIDC).");
            }

            _parameters.IssuerSigningKey = new SymmetricSecurityKey(key);
            _parameters.ValidAlgorithms = [SecurityAlgorithms.HmacSha256];
        }
    }

    /// <summary>Returns the caller, or the reason the Authorization header does not authenticate anyone.</summary>
    public async Task<(Caller? Caller, string? Problem)> ValidateAsync(string? authorization, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (string.IsNullOrWhiteSpace(authorization))
        {
            return (null, "the Authorization header is missing");
        }

        const string scheme = "Bearer ";
        if (!authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) || authorization.Length <= scheme.Length)
        {
            return (null, "the Authorization header must be 'Bearer <token>'");
        }

        var token = authorization[scheme.Length..].Trim();
        if (token.Length > 8192)
        {
            return (null, "the bearer token is too long");
        }

        var now = _clock.GetUtcNow();
        if (_validated.TryGetValue(token, out var cached))
        {
            if (now < cached.Until)
            {
                return (cached.Caller, null);
            }

            _validated.TryRemove(token, out _);
        }

        var result = await _handler.ValidateTokenAsync(token, _parameters);
        if (!result.IsValid)
        {
            return (null, Describe(result.Exception));
        }

        if (!result.Claims.TryGetValue("sub", out var sub) || !Guid.TryParse(sub as string, out var userId))
        {
            return (null, "the token's sub claim must be the trader's UUID");
        }

        var caller = new Caller(userId, HasRole(result.Claims, AdminRole));
        var expires = result.SecurityToken.ValidTo == DateTime.MinValue ? now : new DateTimeOffset(result.SecurityToken.ValidTo, TimeSpan.Zero);
        if (_validated.Count >= CacheCapacity)
        {
            _validated.Clear();
        }

        _validated[token] = (caller, expires < now + CacheFor ? expires : now + CacheFor);
        return (caller, null);
    }

    private static bool HasRole(IDictionary<string, object> claims, string role)
    {
        if (!claims.TryGetValue("roles", out var roles) && !claims.TryGetValue("role", out roles))
        {
            return false;
        }

        return roles switch
        {
            string one => one == role,
            IEnumerable<object> many => many.Any(r => r as string == role),
            JsonElement { ValueKind: JsonValueKind.Array } array => array.EnumerateArray().Any(r => r.ValueKind == JsonValueKind.String && r.GetString() == role),
            JsonElement { ValueKind: JsonValueKind.String } single => single.GetString() == role,
            _ => false,
        };
    }

    // Reasons a client can act on; never the key material or the token.
    private static string Describe(Exception? e) => e switch
    {
        SecurityTokenExpiredException => "the token has expired",
        SecurityTokenNotYetValidException => "the token is not valid yet",
        SecurityTokenInvalidAudienceException => "the token is for another audience",
        SecurityTokenInvalidIssuerException => "the token has another issuer",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature is not valid",
        SecurityTokenNoExpirationException => "the token has no expiry",
        SecurityTokenMalformedException or ArgumentException => "the token is malformed",
        _ => "the token is not valid",
    };
}
