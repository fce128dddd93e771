using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Handlers;
using OrderFunctions.Core.Http;
using OrderFunctions.Core.Telemetry;

namespace OrderFunctions.Core.Api;

/// <summary>
/// The whole HTTP API, host-neutral: authenticates the caller, runs the route's handler and turns every
/// failure into an envelope. No stack trace, SQL or connection string ever reaches a response.
/// </summary>
public sealed partial class OrderApi
{
    private static readonly IReadOnlyDictionary<string, string> RetryAfter = new Dictionary<string, string> { ["Retry-After"] = "1" };

    private readonly TokenValidator _tokens;
    private readonly HashSet<string> _corsOrigins;
    private readonly ILogger<OrderApi> _logger;
    private readonly Dictionary<string, ApiEndpoint> _byName;

    public OrderApi(TokenValidator tokens, OrdersHandler orders, AccountHandler accounts, ListingHandler listings,
        AdminHandler admin, HealthHandler health, PositionsHandler positions, ILogger<OrderApi> logger,
        OrderFunctionsSettings? settings = null)
    {
        _tokens = tokens;
        _corsOrigins = new HashSet<string>(settings?.CorsAllowedOrigins ?? [], StringComparer.OrdinalIgnoreCase);
        _logger = logger;
        Endpoints =
        [
            new(EndpointNames.ExecuteOrder, "POST", Routes.Orders, Access.Trader, orders.ExecuteAsync),
            new(EndpointNames.ListOrders, "GET", Routes.Orders, Access.Trader, listings.ListOrdersAsync),
            new(EndpointNames.GetOrder, "GET", Routes.OrderById, Access.Trader, orders.GetAsync),
            new(EndpointNames.RollbackOrder, "POST", Routes.OrderRollback, Access.Admin, orders.RollbackAsync),
            new(EndpointNames.CheckTransactionIntegrity, "GET", Routes.TransactionIntegrity, Access.Trader, orders.CheckIntegrityAsync),
            new(EndpointNames.GetMyAccount, "GET", Routes.AccountMe, Access.Trader, accounts.GetMineAsync),
            new(EndpointNames.ListPositions, "GET", Routes.Positions, Access.Trader, listings.ListPositionsAsync),
            new(EndpointNames.ListTrades, "GET", Routes.Trades, Access.Trader, listings.ListTradesAsync),
            new(EndpointNames.CreateStrategy, "POST", Routes.Strategies, Access.Trader, accounts.CreateStrategyAsync),
            new(EndpointNames.Health, "GET", Routes.Health, Access.Anonymous, health.CheckAsync),
            new(EndpointNames.UpsertInstruments, "PUT", Routes.AdminInstruments, Access.Admin, admin.UpsertInstrumentsAsync),
            new(EndpointNames.Deposit, "POST", Routes.AdminDeposits, Access.Admin, admin.DepositAsync),
            new(EndpointNames.SyncPositions, "POST", Routes.AdminPositionsSync, Access.Admin, admin.SyncPositionsAsync),
            new(EndpointNames.RunMaintenance, "POST", Routes.AdminMaintenance, Access.Admin, admin.RunMaintenanceAsync),
            new(EndpointNames.SetPositionStops, "PATCH", Routes.PositionById, Access.Trader, positions.SetStopsAsync),
            new(EndpointNames.SetPrices, "PUT", Routes.AdminPrices, Access.Admin, admin.SetPricesAsync),
        ];
        _byName = Endpoints.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    public IReadOnlyList<ApiEndpoint> Endpoints { get; }

    public ApiEndpoint Endpoint(string name) => _byName[name];

    public async Task<ApiResponse> HandleAsync(string endpointName, ApiRequest request, CancellationToken cancellationToken)
    {
        var endpoint = _byName[endpointName];
        var started = Stopwatch.GetTimestamp();
        ApiResponse response;
        try
        {
            response = await AuthorizeAndRunAsync(endpoint, request, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (SigningKeysUnavailableException e)
        {
            LogFailure(e, endpoint.Name);
            response = ApiResponse.Error(ErrorCodes.ServiceUnavailable, "the token issuer's signing keys could not be fetched; try again shortly");
        }
        catch (DatabaseUnavailableException e)
        {
            LogFailure(e, endpoint.Name);
            response = ApiResponse.Error(ErrorCodes.ServiceUnavailable, "the database is unavailable; nothing was changed; try again shortly",
                new JsonObject { ["outcome"] = "not_applied" }, RetryAfter);
        }
        catch (DatabaseTimeoutException e)
        {
            LogFailure(e, endpoint.Name);
            response = ApiResponse.Error(ErrorCodes.Timeout, "the database did not answer in time and stopped the request; nothing was changed",
                new JsonObject { ["outcome"] = "not_applied" });
        }
        catch (OutcomeUnknownException e)
        {
            LogFailure(e, endpoint.Name);
            response = ApiResponse.Error(ErrorCodes.ServiceUnavailable, e.RepeatIsSafe
                    ? "the request reached the database but its answer was lost (the connection failed or timed out), so it may or may not "
                      + "have been applied; repeat the identical request, with the same Idempotency-Key where it has one, to get its outcome: "
                      + "a repeat is never applied twice"
                    : "the request reached the database but its answer was lost (the connection failed or timed out), so it may or may not "
                      + "have been applied; check the current state before repeating it, as a repeat could apply it twice",
                new JsonObject { ["outcome"] = "unknown", ["repeat_is_safe"] = e.RepeatIsSafe });
        }
        catch (Exception e)
        {
            LogFailure(e, endpoint.Name);
            // Only an error the server reported proves that the transaction rolled back.
            response = ApiResponse.Error(ErrorCodes.InternalError, e is PostgresException
                ? "the database refused the request with an unexpected error; nothing was changed"
                : "an unexpected error occurred");
        }

        LogAnswered(endpoint.Name, response.Status, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return ExposeHeadersToAllowedOrigin(request, response);
    }

    private async Task<ApiResponse> AuthorizeAndRunAsync(ApiEndpoint endpoint, ApiRequest request, CancellationToken cancellationToken)
    {
        Caller? caller = null;
        if (endpoint.Access != Access.Anonymous)
        {
            var (validated, problem) = await _tokens.ValidateAsync(request.Header("Authorization"), cancellationToken);
            if (validated is null)
            {
                return ApiResponse.Error(ErrorCodes.Unauthorized, problem ?? "not authenticated",
                    headers: new Dictionary<string, string> { ["WWW-Authenticate"] = "Bearer" });
            }

            if (endpoint.Access == Access.Admin && !validated.IsAdmin)
            {
                return ApiResponse.Error(ErrorCodes.Forbidden, $"this route requires the {TokenValidator.AdminRole} role");
            }

            // 403, not 401: the token is valid, it just does not make its holder a trader (RFC 6750 §3.1
            // insufficient_scope); a new token from the same client would not change that.
            if (endpoint.Access == Access.Trader && !validated.IsTrader)
            {
                return ApiResponse.Error(ErrorCodes.Forbidden,
                    $"this route needs a user's delegated token with the {_tokens.RequiredScope} scope; an app-only token is never a trader",
                    headers: new Dictionary<string, string> { ["WWW-Authenticate"] = $"Bearer error=\"insufficient_scope\", scope=\"{_tokens.RequiredScope}\"" });
            }

            caller = validated;
            OrderTelemetry.TagTrader(validated.UserId);
        }

        if (endpoint.Route.StartsWith(Routes.Orders + "/", StringComparison.Ordinal) && Guid.TryParse(request.RouteValue("id"), out var orderId))
        {
            OrderTelemetry.TagOrder(orderId);
        }

        return ControlCharactersInQuery(request) is { Count: > 0 } errors
            ? ApiResponse.Validation(errors)
            : await endpoint.Handle(new ApiContext(request, caller, cancellationToken));
    }

    /// <summary>
    /// On every route, whether or not it reads its query: PostgreSQL text cannot hold NUL, .NET's parsers skip trailing
    /// NULs ("5\u0000" reads as 5), and no parameter has a use for control characters. Refused, never passed on or dropped.
    /// </summary>
    private static List<FieldError>? ControlCharactersInQuery(ApiRequest request)
    {
        List<FieldError>? errors = null;
        foreach (var (name, values) in request.Query)
        {
            if (name.Any(char.IsControl) || values.Any(v => v.Any(char.IsControl)))
            {
                (errors ??= []).Add(new FieldError(name, "must not contain control characters"));
            }
        }

        return errors;
    }

    /// <summary>
    /// A browser reads only the response headers CORS exposes. The platform CORS of Azure Functions (and LocalHost's)
    /// answers preflights and allows the origin but exposes nothing, so the API exposes its own headers, to allowed
    /// origins only: any other origin gets no CORS header at all.
    /// </summary>
    private ApiResponse ExposeHeadersToAllowedOrigin(ApiRequest request, ApiResponse response)
    {
        if (request.Header("Origin") is not { } origin || !_corsOrigins.Contains(origin))
        {
            return response;
        }

        var headers = new Dictionary<string, string>(response.Headers, StringComparer.OrdinalIgnoreCase)
        {
            [Cors.ExposeHeadersHeader] = string.Join(", ", Cors.ExposedResponseHeaders),
        };
        return new ApiResponse { Status = response.Status, ContentType = response.ContentType, Body = response.Body, Headers = headers };
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Endpoint} failed")]
    private partial void LogFailure(Exception exception, string endpoint);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Endpoint} answered {Status} in {ElapsedMs} ms")]
    private partial void LogAnswered(string endpoint, int status, double elapsedMs);
}
