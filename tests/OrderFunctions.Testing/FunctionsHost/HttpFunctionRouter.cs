using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;

namespace OrderFunctions.Testing.FunctionsHost;

/// <summary>
/// Routes a request to an HTTP function the way the Functions host's HTTP extension does: every function's route
/// template (host.json's routePrefix, then the trigger's route, or its name when it has none) with its methods as a
/// constraint, tried in order of specificity: segment by segment, a literal before a parameter, more inline
/// constraints first, literals alphabetically, and a longer template before its prefix. The first template that
/// matches with an allowed method wins; a wrong method falls through to the next candidate, so a catch-all function
/// (<c>{*path}</c>, a parameter in its first segment) sees only what no other function takes.
/// </summary>
public sealed class HttpFunctionRouter
{
    private readonly List<Entry> _entries;

    public HttpFunctionRouter(IEnumerable<LoadedFunction> functions, string routePrefix)
    {
        _entries = functions.Where(f => f.IsHttp)
            .Select(f =>
            {
                var route = f.Route ?? f.Name;
                var template = TemplateParser.Parse(string.IsNullOrEmpty(routePrefix) ? route : routePrefix + "/" + route);
                if (template.Parameters.Any(p => p.InlineConstraints.Any()))
                {
                    throw new NotSupportedException($"{f.Name}: inline route constraints are not supported by this test host ({route})");
                }

                return new Entry(f, template, new TemplateMatcher(template, new RouteValueDictionary()));
            })
            .ToList();
        _entries.Sort((x, y) => Compare(x.Template, y.Template));
    }

    /// <summary>The HTTP functions in the order they are tried.</summary>
    public IReadOnlyList<LoadedFunction> Functions => _entries.Select(e => e.Function).ToList();

    /// <summary>The function that takes this request and its route values, or null (the host would answer 404).</summary>
    public (LoadedFunction Function, RouteValueDictionary Values)? Match(string method, PathString path)
    {
        foreach (var entry in _entries)
        {
            var values = new RouteValueDictionary();
            if (!entry.Matcher.TryMatch(path, values))
            {
                continue;
            }

            if (entry.Function.HttpMethods is { } methods && !methods.Contains(method.ToUpperInvariant()))
            {
                continue;
            }

            return (entry.Function, values);
        }

        return null;
    }

    private static int Compare(RouteTemplate x, RouteTemplate y)
    {
        for (var i = 0; i < x.Segments.Count; i++)
        {
            if (y.Segments.Count <= i)
            {
                return -1;
            }

            var xPart = x.Segments[i].Parts[0];
            var yPart = y.Segments[i].Parts[0];
            if (!xPart.IsParameter && yPart.IsParameter)
            {
                return -1;
            }

            if (xPart.IsParameter && !yPart.IsParameter)
            {
                return 1;
            }

            if (xPart.IsParameter)
            {
                var constraints = yPart.InlineConstraints.Count().CompareTo(xPart.InlineConstraints.Count());
                if (constraints != 0)
                {
                    return constraints;
                }
            }
            else
            {
                var text = string.Compare(xPart.Text, yPart.Text, StringComparison.OrdinalIgnoreCase);
                if (text != 0)
                {
                    return text;
                }
            }
        }

        return y.Segments.Count > x.Segments.Count ? 1 : 0;
    }

    private sealed record Entry(LoadedFunction Function, RouteTemplate Template, TemplateMatcher Matcher);
}
