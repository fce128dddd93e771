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

    /// <summary>A request no endpoint takes: Core's 404 or 405 envelope, as LocalHost answers it.</summary>
    public Task<HttpResponseData> HandleUnmatchedAsync(HttpRequestData request, CancellationToken cancellationToken) =>
        WriteAsync(request, UnmatchedRoute.Answer(api.Endpoints, request.Method, Uri.UnescapeDataString(request.Url.AbsolutePath)), cancellationToken);

    private async Task<HttpResponseData> HandleAsync(string endpointName, HttpRequestData request,
        IReadOnlyDictionary<string, string> routeValues, CancellationToken cancellationToken) =>
        await WriteAsync(request, await api.HandleAsync(endpointName, ToApiRequest(request, routeValues), cancellationToken), cancellationToken);

    private static async Task<HttpResponseData> WriteAsync(HttpRequestData request, ApiResponse result, CancellationToken cancellationToken)
    {
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
        // The raw query of the URL the host forwards, read by Core's one parser (LocalHost uses it too).
        Query = QueryParameters.Parse(request.Url.Query),
        // As the host sent them (a repeated header arrives joined with ","), not re-parsed by HttpHeaders, which would
        // split and re-join known headers with ", " where LocalHost passes Kestrel's "," joins.
        Headers = request.Headers.NonValidated.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
        // The host buffers the whole body (up to FUNCTIONS_REQUEST_BODY_SIZE_LIMIT) before the worker sees it, and
        // forwards none without a Content-Length; Core's RequestBody enforces the API's 64 KiB and answers 413.
        Body = request.Body,
    };
}
