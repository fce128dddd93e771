using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Api;

/// <summary>
/// The answer to a request no endpoint takes, the same on both hosts: 405 METHOD_NOT_ALLOWED when an endpoint serves
/// the path with another method, 404 NOT_FOUND otherwise, as problem documents like every other error.
/// </summary>
public static class UnmatchedRoute
{
    /// <param name="path">The request path, percent-decoded, with its leading slash.</param>
    public static ApiResponse Answer(IEnumerable<ApiEndpoint> endpoints, string method, string path) =>
        endpoints.Any(e => Matches(e.Route, path))
            ? ApiResponse.Error(ErrorCodes.MethodNotAllowed, $"{method} is not allowed on {path}")
            : ApiResponse.Error(ErrorCodes.NotFound, $"no route {path}");

    /// <summary>Whether a route template (literal segments and <c>{name}</c> placeholders) matches a path, as routing does: case-insensitive literals, one trailing slash ignored.</summary>
    public static bool Matches(string template, string path)
    {
        var segments = path.TrimStart('/');
        if (segments.EndsWith('/'))
        {
            segments = segments[..^1];
        }

        var actual = segments.Split('/');
        var expected = template.Split('/');
        if (actual.Length != expected.Length)
        {
            return false;
        }

        for (var i = 0; i < expected.Length; i++)
        {
            var placeholder = expected[i].StartsWith('{') && expected[i].EndsWith('}');
            if (placeholder ? actual[i].Length == 0 : !string.Equals(expected[i], actual[i], StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        return true;
    }
}
