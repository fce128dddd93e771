namespace OrderFunctions.Core.Http;

/// <summary>A host-neutral HTTP request: what a trigger or a Kestrel endpoint hands to the API.</summary>
public sealed class ApiRequest
{
    private static readonly IReadOnlyDictionary<string, string> NoValues = new Dictionary<string, string>();

    public required string Method { get; init; }

    /// <summary>Values of the route template's placeholders, e.g. <c>id</c> for <see cref="Routes.OrderById"/>.</summary>
    public IReadOnlyDictionary<string, string> RouteValues { get; init; } = NoValues;

    /// <summary>Query parameters; a name given more than once keeps every value.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Query { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Request headers, looked up case-insensitively.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = NoValues;

    public Stream Body { get; init; } = Stream.Null;

    public string? Header(string name)
    {
        if (Headers.TryGetValue(name, out var value))
        {
            return value;
        }

        foreach (var (key, v) in Headers)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return v;
            }
        }

        return null;
    }

    public string? RouteValue(string name) => RouteValues.TryGetValue(name, out var value) ? value : null;
}
