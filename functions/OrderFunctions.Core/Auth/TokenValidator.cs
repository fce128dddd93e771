using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Tokens;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Core.Auth;

/// <summary>
/// The authenticated caller: the trader's id from the <c>Auth__TraderIdClaim</c> claim, whether <c>roles</c> grants
/// admin, and whether the token may act as a trader (a delegated token carrying <c>Auth__RequiredScope</c>).
/// </summary>
public sealed record Caller(Guid UserId, bool IsAdmin, bool IsTrader = true);

/// <summary>
/// Validates bearer JWTs: signature, issuer, audience and lifetime, then the claims this API reads. Locally the key
/// is the UTF-8 bytes of Auth__SigningKey (HS256); in Azure the signing keys come from the OIDC authority's
/// discovery document and JWKS (<see cref="OidcSigningKeys"/>). Identity never comes from any other header or from
/// the body.
/// </summary>
public sealed class TokenValidator
{
    public const string AdminRole = "orders.admin";
    public const int MinimumKeyBytes = 32;

    private const int CacheCapacity = 10_000;
    private const int MaxTokenLength = 8192;
    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(5);

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters _parameters;
    private readonly OidcSigningKeys? _authorityKeys;
    private readonly string _traderIdClaim;
    private readonly TimeProvider _clock;

    // A client sends the same token with every request; checking its signature and claims once per few
    // minutes, not per request, takes the JWT work off the hot path. An entry lives until the token expires
    // or five minutes pass (so a revoked signing key stops working within five minutes).
    private readonly ConcurrentDictionary<string, (Caller Caller, DateTimeOffset Until)> _validated = new(StringComparer.Ordinal);

    public TokenValidator(AuthSettings settings, TimeProvider? clock = null)
        : this(settings, clock, httpClient: null)
    {
    }

    /// <param name="httpClient">Fetches the authority's metadata; null for one of the validator's own.</param>
    public TokenValidator(AuthSettings settings, TimeProvider? clock, HttpClient? httpClient)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _clock = clock ?? TimeProvider.System;
        if (string.IsNullOrWhiteSpace(settings.Issuer) || string.IsNullOrWhiteSpace(settings.Audience))
        {
            throw new InvalidOperationException("Auth__Issuer and Auth__Audience must be set.");
        }

        _traderIdClaim = string.IsNullOrWhiteSpace(settings.TraderIdClaim) ? AuthSettings.DefaultTraderIdClaim : settings.TraderIdClaim.Trim();
        RequiredScope = settings.RequiredScope.Trim();
        if (RequiredScope.Contains(' ', StringComparison.Ordinal))
        {
            throw new InvalidOperationException("Auth__RequiredScope names one scope (scp holds space-separated scopes).");
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
            _authorityKeys = new OidcSigningKeys(AuthorityUri(settings), settings.RequireHttpsMetadata, _clock, httpClient);
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

    /// <summary>The scope a trader's token must carry in <c>scp</c>; empty when any authenticated token may trade.</summary>
    public string RequiredScope { get; }

    /// <summary>
    /// Returns the caller, or the reason the Authorization header does not authenticate anyone.
    /// Throws <see cref="SigningKeysUnavailableException"/> when the authority's keys were never fetched.
    /// </summary>
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
        if (token.Length > MaxTokenLength)
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

        JsonWebToken parsed;
        try
        {
            parsed = _handler.ReadJsonWebToken(token);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenMalformedException)
        {
            return (null, "the token is malformed");
        }

        // RFC 7515 §4.1.11: a recipient must reject a token whose crit names an extension it does not
        // process, and this API processes none.
        if (parsed.TryGetHeaderValue<object>("crit", out _))
        {
            return (null, "the token's header lists critical extensions (crit) this API does not process");
        }

        var result = await ValidateSignedAsync(token, parsed.Kid, cancellationToken);
        if (!result.IsValid)
        {
            return (null, Describe(result.Exception));
        }

        using var payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(parsed.EncodedPayload));
        var claims = payload.RootElement;
        if (!claims.TryGetProperty(_traderIdClaim, out var id) || id.ValueKind != JsonValueKind.String || !Guid.TryParse(id.GetString(), out var userId))
        {
            return (null, $"the token's {_traderIdClaim} claim must be the trader's UUID");
        }

        var caller = new Caller(userId, HasRole(claims, AdminRole), MayTrade(claims));
        var expires = result.SecurityToken.ValidTo == DateTime.MinValue ? now : new DateTimeOffset(result.SecurityToken.ValidTo, TimeSpan.Zero);
        if (_validated.Count >= CacheCapacity)
        {
            _validated.Clear();
        }

        _validated[token] = (caller, expires < now + CacheFor ? expires : now + CacheFor);
        return (caller, null);
    }

    private async Task<TokenValidationResult> ValidateSignedAsync(string token, string? kid, CancellationToken cancellationToken)
    {
        if (_authorityKeys is null)
        {
            return await _handler.ValidateTokenAsync(token, _parameters);
        }

        var keys = await _authorityKeys.GetAsync(cancellationToken);
        if (!string.IsNullOrEmpty(kid) && !keys.Has(kid))
        {
            // A kid the JWKS did not list: the authority may have rolled its keys. Refetched at most once per
            // OidcSigningKeys.UnknownKeyRefreshInterval, so tokens with made-up kids cannot hammer the authority.
            keys = await _authorityKeys.RefreshForUnknownKeyAsync(keys, kid, cancellationToken);
        }

        var parameters = _parameters.Clone();
        parameters.IssuerSigningKeys = keys.Keys;
        return await _handler.ValidateTokenAsync(token, parameters);
    }

    /// <summary>Delegated tokens carrying the required scope; an app-only token (no scp, or idtyp "app") never trades when a scope is required.</summary>
    private bool MayTrade(JsonElement claims)
    {
        if (RequiredScope.Length == 0)
        {
            return true;
        }

        if (claims.TryGetProperty("idtyp", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "app")
        {
            return false;
        }

        return claims.TryGetProperty("scp", out var scp) && scp.ValueKind == JsonValueKind.String
            && scp.GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(RequiredScope, StringComparer.Ordinal);
    }

    /// <summary><c>roles</c> must be a JSON array of strings; anything else (a string, numbers, nested arrays) grants nothing.</summary>
    private static bool HasRole(JsonElement claims, string role)
    {
        if (!claims.TryGetProperty("roles", out var roles) || roles.ValueKind != JsonValueKind.Array)
        {
            return false;
        }

        var found = false;
        foreach (var entry in roles.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.String)
            {
                return false;
            }

            found |= entry.GetString() == role;
        }

        return found;
    }

    private static Uri AuthorityUri(AuthSettings settings)
    {
        if (!Uri.TryCreate(settings.Authority.Trim(), UriKind.Absolute, out var authority) || authority.Scheme is not ("https" or "http"))
        {
            throw new InvalidOperationException("Auth__Authority must be an absolute https URL.");
        }

        if (!settings.RequireHttpsMetadata && !authority.IsLoopback)
        {
            throw new InvalidOperationException("Auth__RequireHttpsMetadata may be false only for a loopback Auth__Authority (tests).");
        }

        if (settings.RequireHttpsMetadata && authority.Scheme != "https")
        {
            throw new InvalidOperationException("Auth__Authority must be an https URL (Auth__RequireHttpsMetadata is true).");
        }

        return authority;
    }

    // Reasons a client can act on; never the key material or the token.
    private static string Describe(Exception? e) => e switch
    {
        SecurityTokenExpiredException => "the token has expired",
        SecurityTokenNotYetValidException => "the token is not valid yet",
        SecurityTokenInvalidAudienceException => "the token is for another audience",
        SecurityTokenInvalidIssuerException => "the token has another issuer",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature is not valid",
        SecurityTokenInvalidAlgorithmException => "the token is signed with an algorithm this API does not accept",
        SecurityTokenNoExpirationException => "the token has no expiry",
        SecurityTokenMalformedException or ArgumentException => "the token is malformed",
        _ => "the token is not valid",
    };
}

/// <summary>The OIDC authority's signing keys could not be fetched, and none were fetched before.</summary>
public sealed class SigningKeysUnavailableException(Exception inner)
    : Exception("the token issuer's signing keys could not be fetched", inner);
