namespace OrderFunctions.Core.Http;

/// <summary>
/// The one reading of a raw query string both hosts use, so the same URL reaches the handlers identically: segments
/// split on '&amp;', name and value on the first '=', '+' read as a space and percent-escapes decoded, segments with an
/// empty name skipped, names compared case-insensitively, and every value of a repeated name kept in order. These are
/// ASP.NET Core's rules; the Functions worker would otherwise read the URL with HttpUtility's.
/// </summary>
public static class QueryParameters
{
    /// <param name="raw">The query as sent, with or without its leading '?'.</param>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Parse(string? raw)
    {
        var values = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        var query = (raw ?? "").AsSpan();
        if (query.StartsWith("?"))
        {
            query = query[1..];
        }

        while (!query.IsEmpty)
        {
            var end = query.IndexOf('&');
            var segment = end < 0 ? query : query[..end];
            query = end < 0 ? [] : query[(end + 1)..];

            var equals = segment.IndexOf('=');
            var name = equals < 0 ? segment : segment[..equals];
            if (name.IsEmpty)
            {
                continue;
            }

            var decodedName = Decode(name);
            if (!values.TryGetValue(decodedName, out var list))
            {
                values[decodedName] = list = [];
            }

            list.Add(equals < 0 ? "" : Decode(segment[(equals + 1)..]));
        }

        return values.ToDictionary(v => v.Key, v => (IReadOnlyList<string>)v.Value, StringComparer.OrdinalIgnoreCase);
    }

    private static string Decode(ReadOnlySpan<char> text) =>
        text.IndexOfAny('%', '+') < 0 ? new string(text) : Uri.UnescapeDataString(text.ToString().Replace('+', ' '));
}
