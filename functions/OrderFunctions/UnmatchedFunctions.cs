using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using OrderFunctions.Core;

namespace OrderFunctions;

// In Azure the Functions host answers a request no function takes (an empty 404) before the worker sees it; LocalHost
// answers with Core's envelope. This function takes exactly those requests: the host tries routes most specific first
// (a literal segment before a parameter), so {*path}, a parameter from its first segment on, comes after every other
// route, and a request whose method another route refuses falls through to it. Core then answers as LocalHost does.
public sealed class UnmatchedFunctions(HttpTriggerAdapter http)
{
    [Function(nameof(Unmatched))]
    public Task<HttpResponseData> Unmatched(
        [HttpTrigger(AuthorizationLevel.Anonymous, Route = Routes.CatchAll)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleUnmatchedAsync(req, cancellationToken);
}
