using System.Collections.Specialized;
using System.Net;
using Microsoft.Azure.Functions.Worker.Http;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Http;

namespace OrderFunctions;

/// <summary>
/// The one translation between the Functions HTTP model and Core: <see cref="HttpRequestData"/> to
/// <see cref="ApiRequest"/>, <see cref="OrderApi"/>, then <see cref="ApiResponse"/> to <see cref="HttpResponseData"/>.
/// LocalHost does the same for Kestrel, so both hosts hand Core the same request and send back the same answer.
/// </summary>
public sealed class HttpTriggerAdapter(OrderApi api)
{
    private static readonly IReadOnlyDictionary<string, string> NoRouteValues = new Dictionary<string, string>();

    public Task<HttpResponseData> HandleAsync(string endpointName, HttpRequestData request, CancellationToken cancellationToken) =>
        HandleAsync(endpointName, request, NoRouteValues, cancellationToken);

    /// <summary>For routes with one placeholder: the host binds it to the trigger parameter of the same name.</summary>
    public Task<HttpResponseData> HandleAsync(string endpointName, HttpRequestData request, (string Name, string Value) routeValue,
        CancellationToken cancellationToken) =>
        HandleAsync(endpointName, request, new Dictionary<string, string> { [routeValue.Name] = routeValue.Value }, cancellationToken);

    private async Task<HttpResponseData> HandleAsync(string endpointName, HttpRequestData request,
        IReadOnlyDictionary<string, string> routeValues, CancellationToken cancellationToken)
    {
        var result = await api.HandleAsync(endpointName, ToApiRequest(request, routeValues), cancellationToken);

        var response = request.CreateResponse((HttpStatusCode)result.Status);
        response.Headers.Add("Content-Type", result.ContentType);
        foreach (var (name, value) in result.Headers)
        {
            response.Headers.Add(name, value);
        }

        await response.Body.WriteAsync(result.Body, cancellationToken);
        return response;
    }

    private static ApiRequest ToApiRequest(HttpRequestData request, IReadOnlyDictionary<string, string> routeValues) => new()
    {
        Method = request.Method,
        RouteValues = routeValues,
        Query = ToQuery(request.Query),
        Headers = request.Headers.ToDictionary(h => h.Key, h => string.Join(", ", h.Value), StringComparer.OrdinalIgnoreCase),
        // The host buffers the whole body (up to its own limit, FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, 100 MB by
        // default) before the worker sees it; Core's RequestBody enforces the API's 64 KiB and answers 413.
        Body = request.Body,
    };

    // Keeps every value of a repeated name. A bare "?flag" sits under a null key in a NameValueCollection; ASP.NET
    // Core (LocalHost) reads it as flag="", and Core rejects it as an unknown parameter, so it must not vanish here.
    private static Dictionary<string, IReadOnlyList<string>> ToQuery(NameValueCollection query)
    {
        var values = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var key in query.AllKeys)
        {
            foreach (var value in query.GetValues(key) ?? [])
            {
                var (name, item) = key is null ? (value, "") : (key, value);
                if (name.Length == 0)
                {
                    continue;
                }

                if (!values.TryGetValue(name, out var list))
                {
                    values[name] = list = [];
                }

                list.Add(item);
            }
        }

        return values.ToDictionary(v => v.Key, v => (IReadOnlyList<string>)v.Value);
    }
}
