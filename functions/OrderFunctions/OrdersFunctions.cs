using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;

namespace OrderFunctions;

// Every trigger in this app is AuthorizationLevel.Anonymous on purpose: identity is the bearer JWT that Core
// validates, and a function key handed to a browser is no secret, so keys would guard nothing.
public sealed class OrdersFunctions(HttpTriggerAdapter http)
{
    [Function(EndpointNames.ExecuteOrder)]
    public Task<HttpResponseData> ExecuteOrder(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.Orders)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.ExecuteOrder, req, cancellationToken);

    [Function(EndpointNames.ListOrders)]
    public Task<HttpResponseData> ListOrders(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Orders)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.ListOrders, req, cancellationToken);

    [Function(EndpointNames.GetOrder)]
    public Task<HttpResponseData> GetOrder(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.OrderById)] HttpRequestData req,
        string id, CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.GetOrder, req, (nameof(id), id), cancellationToken);

    [Function(EndpointNames.RollbackOrder)]
    public Task<HttpResponseData> RollbackOrder(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.OrderRollback)] HttpRequestData req,
        string id, CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.RollbackOrder, req, (nameof(id), id), cancellationToken);

    [Function(EndpointNames.CheckTransactionIntegrity)]
    public Task<HttpResponseData> CheckTransactionIntegrity(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.TransactionIntegrity)] HttpRequestData req,
        string id, CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.CheckTransactionIntegrity, req, (nameof(id), id), cancellationToken);
}
