namespace OrderFunctions.Core;

/// <summary>
/// Every HTTP route of the API. Both hosts (the Functions triggers and LocalHost) use these constants, so
/// they cannot drift apart. The constants carry the <c>api/</c> prefix themselves and host.json sets
/// routePrefix to "": the Functions host refuses function routes that begin with "admin" (its own admin
/// API lives there), and /api/admin/... must stay the public contract.
/// </summary>
public static class Routes
{
    public const string Orders = "api/orders";
    public const string OrderById = "api/orders/{id}";
    public const string OrderRollback = "api/orders/{id}/rollback";
    public const string TransactionIntegrity = "api/transactions/{id}/integrity";
    public const string AccountMe = "api/accounts/me";
    public const string Positions = "api/positions";
    public const string PositionById = "api/positions/{id}";
    public const string Trades = "api/trades";
    public const string Strategies = "api/strategies";
    public const string Health = "api/health";
    public const string AdminInstruments = "api/admin/instruments";
    public const string AdminPrices = "api/admin/prices";
    public const string AdminDeposits = "api/admin/accounts/{userId}/deposits";
    public const string AdminPositionsSync = "api/admin/positions/sync";
    public const string AdminMaintenance = "api/admin/maintenance/{job}";

    /// <summary>
    /// The Functions app's catch-all: every path, every method, tried after every other route (see
    /// <see cref="Api.UnmatchedRoute"/>). LocalHost needs no such route: its routing answers unmatched requests itself.
    /// </summary>
    public const string CatchAll = "{*path}";
}
