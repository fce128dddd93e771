using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace OrderFunctions.Core.Auth;

/// <summary>
/// The signing keys of an OIDC authority, from its discovery document's <c>jwks_uri</c>. Fetched on first use and
/// again every <see cref="RefreshEvery"/>; when a token names a <c>kid</c> the keys do not have (the authority
/// rolled its keys), fetched at once, but at most once per <see cref="UnknownKeyRefreshInterval"/> whatever the
/// tokens say. The fetch completes before the token is judged, so the first token signed with a new key is accepted.
/// A failed refresh keeps the keys already known.
/// </summary>
internal sealed class OidcSigningKeys
{
    /// <summary>How long fetched keys are used before they are fetched again (Entra publishes new keys well ahead of using them).</summary>
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromHours(12);

    /// <summary>The least time between two fetches caused by unknown kids.</summary>
    public static readonly TimeSpan UnknownKeyRefreshInterval = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(10);

    /// <summary>After a failed first fetch, requests fail fast for this long instead of each trying again.</summary>
    private static readonly TimeSpan RetryFirstFetchAfter = TimeSpan.FromSeconds(5);

    private readonly string _metadataAddress;
    private readonly HttpDocumentRetriever _retriever;
    private readonly TimeProvider _clock;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile KeySet? _current;
    private DateTimeOffset _nextFetch;
    private DateTimeOffset _lastUnknownKeyFetch = DateTimeOffset.MinValue;
    private (DateTimeOffset Until, Exception Error)? _firstFetchFailed;

    public OidcSigningKeys(Uri authority, bool requireHttps, TimeProvider clock, HttpClient? httpClient)
    {
        _metadataAddress = authority.AbsoluteUri.TrimEnd('/') + "/.well-known/openid-configuration";
        _retriever = new HttpDocumentRetriever(httpClient ?? new HttpClient { Timeout = FetchTimeout }) { RequireHttps = requireHttps };
        _clock = clock;
    }

    /// <summary>The keys in use, fetched first if none were or they are due.</summary>
    public async Task<KeySet> GetAsync(CancellationToken cancellationToken)
    {
        var current = _current;
        if (current is not null && _clock.GetUtcNow() < _nextFetch)
        {
            return current;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            current = _current;
            if (current is not null && _clock.GetUtcNow() < _nextFetch)
            {
                return current;
            }

            if (current is null && _firstFetchFailed is { } failed && _clock.GetUtcNow() < failed.Until)
            {
                throw new SigningKeysUnavailableException(failed.Error);
            }

            try
            {
                return await FetchAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                if (current is null)
                {
                    _firstFetchFailed = (_clock.GetUtcNow() + RetryFirstFetchAfter, e);
                    throw new SigningKeysUnavailableException(e);
                }

                // Keep validating with the keys we have; try again a little later.
                _nextFetch = _clock.GetUtcNow() + UnknownKeyRefreshInterval;
                return current;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Fresh keys for a token whose <paramref name="kid"/> <paramref name="seen"/> lacks, unless a fetch for that reason was made too recently.</summary>
    public async Task<KeySet> RefreshForUnknownKeyAsync(KeySet seen, string kid, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var current = _current ?? seen;
            if (!ReferenceEquals(current, seen) && current.Has(kid))
            {
                return current;
            }

            var now = _clock.GetUtcNow();
            if (now < _lastUnknownKeyFetch + UnknownKeyRefreshInterval)
            {
                return current;
            }

            _lastUnknownKeyFetch = now;
            try
            {
                return await FetchAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                return current;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<KeySet> FetchAsync(CancellationToken cancellationToken)
    {
        var configuration = await OpenIdConnectConfigurationRetriever.GetAsync(_metadataAddress, _retriever, cancellationToken);
        var keys = new KeySet(configuration.SigningKeys.ToList());
        _current = keys;
        _nextFetch = _clock.GetUtcNow() + RefreshEvery;
        return keys;
    }
}

/// <summary>One fetched JWKS.</summary>
internal sealed class KeySet(IReadOnlyList<SecurityKey> keys)
{
    private readonly HashSet<string> _ids = keys.Select(k => k.KeyId).OfType<string>().ToHashSet(StringComparer.Ordinal);

    public IReadOnlyList<SecurityKey> Keys { get; } = keys;

    public bool Has(string kid) => _ids.Contains(kid);
}
