using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;

namespace OrderFunctions;

// Core requires the orders.admin role on these. The Functions host puts any function whose route starts with
// "admin" or "runtime" in error ("The specified route conflicts with one or more built in routes"), whatever the
// route prefix, so the Routes constants used here must not start with either.
public sealed class AdminFunctions(HttpTriggerAdapter http)
{
    [Function(EndpointNames.UpsertInstruments)]
    public Task<HttpResponseData> UpsertInstruments(
        [HttpTrigger(AuthorizationLevel.Anonymous, "put", Route = Routes.AdminInstruments)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.UpsertInstruments, req, cancellationToken);

    [Function(EndpointNames.SetPrices)]
    public Task<HttpResponseData> SetPrices(
        [HttpTrigger(AuthorizationLevel.Anonymous, "put", Route = Routes.AdminPrices)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.SetPrices, req, cancellationToken);

    [Function(EndpointNames.Deposit)]
    public Task<HttpResponseData> Deposit(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.AdminDeposits)] HttpRequestData req,
        string userId, CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.Deposit, req, (nameof(userId), userId), cancellationToken);

    [Function(EndpointNames.SyncPositions)]
    public Task<HttpResponseData> SyncPositions(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.AdminPositionsSync)] HttpRequestData req,
        CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.SyncPositions, req, cancellationToken);

    [Function(EndpointNames.RunMaintenance)]
    public Task<HttpResponseData> RunMaintenance(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.AdminMaintenance)] HttpRequestData req,
        string job, CancellationToken cancellationToken) =>
        http.HandleAsync(EndpointNames.RunMaintenance, req, (nameof(job), job), cancellationToken);
}
