namespace OrderFunctions.Core.Http;

/// <summary>
/// Which browser origins may call the API, and what a cross-origin caller may send and read. The allowed origins
/// are one setting, <see cref="AllowedOriginsSetting"/>: local.settings.json's <c>Host.CORS</c>, which
/// <c>func start</c> applies and LocalHost reads too; in Azure the Function App's platform CORS
/// (<c>siteConfig.cors.allowedOrigins</c>) and this app setting both come from one Bicep parameter. The platform
/// answers preflights but exposes no response header, so the API itself exposes Idempotent-Replayed to allowed origins.
/// </summary>
public static class Cors
{
    /// <summary>Configuration key (<c>Host__CORS</c> in app settings): comma-separated origins, never <c>*</c>.</summary>
    public const string AllowedOriginsSetting = "Host:CORS";

    /// <summary>Request headers a cross-origin caller may send (the preflight's Access-Control-Allow-Headers).</summary>
    public static IReadOnlyList<string> AllowedRequestHeaders { get; } = ["authorization", "content-type", "idempotency-key"];

    /// <summary>Response headers a cross-origin caller may read (Access-Control-Expose-Headers).</summary>
    public static IReadOnlyList<string> ExposedResponseHeaders { get; } = [Idempotency.ReplayedHeader];

    public const string ExposeHeadersHeader = "Access-Control-Expose-Headers";

    /// <summary>The origins of <paramref name="value"/>; throws for <c>*</c> or anything that is not a bare http(s) origin.</summary>
    public static IReadOnlyList<string> ParseOrigins(string? value)
    {
        var origins = new List<string>();
        foreach (var raw in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (raw.Contains('*', StringComparison.Ordinal))
            {
                throw new InvalidOperationException("Host__CORS lists the browser origins allowed to call the API; '*' (any origin) is not allowed.");
            }

            if (!Uri.TryCreate(raw, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.PathAndQuery != "/"
                || raw.TrimEnd('/').Length != uri.GetLeftPart(UriPartial.Authority).Length)
            {
                throw new InvalidOperationException($"Host__CORS: '{raw}' is not an origin (scheme://host[:port], nothing after it).");
            }

            origins.Add(uri.GetLeftPart(UriPartial.Authority));
        }

        return origins;
    }
}
