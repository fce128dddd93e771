using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;

namespace OrderFunctions;

public sealed class AccountFunctions(HttpTriggerAdapter http)
{
    [Function(EndpointNames.GetMyAccount)]
    public Task<HttpResponseData> GetMyAccount(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.AccountMe)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.GetMyAccount, req, cancellationToken);

    [Function(EndpointNames.ListPositions)]
    public Task<HttpResponseData> ListPositions(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Positions)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.ListPositions, req, cancellationToken);

    [Function(EndpointNames.SetPositionStops)]
    public Task<HttpResponseData> SetPositionStops(
        [HttpTrigger(AuthorizationLevel.Anonymous, "patch", Route = Routes.PositionById)] HttpRequestData req,
        string id, CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.SetPositionStops, req, (nameof(id), id), cancellationToken);

    [Function(EndpointNames.ListTrades)]
    public Task<HttpResponseData> ListTrades(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = Routes.Trades)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.ListTrades, req, cancellationToken);

    [Function(EndpointNames.CreateStrategy)]
    public Task<HttpResponseData> CreateStrategy(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.Strategies)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.CreateStrategy, req, cancellationToken);
}
