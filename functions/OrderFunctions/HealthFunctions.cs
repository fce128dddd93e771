using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;

namespace OrderFunctions;

// Anonymous in Core too, so load balancers and the deploy workflow can probe it without a token.
public sealed class HealthFunctions(HttpTriggerAdapter http)
{
    [Function(EndpointNames.Health)]
    public Task<HttpResponseData> Health(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Health)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.Health, req, cancellationToken);
}
