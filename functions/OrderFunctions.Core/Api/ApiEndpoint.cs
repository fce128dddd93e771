using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Api;

public enum Access
{
    Anonymous,
    Trader,
    Admin,
}

/// <summary>What a handler receives: the request, the authenticated caller (null only on anonymous routes).</summary>
public sealed record ApiContext(ApiRequest Request, Caller? Caller, CancellationToken CancellationToken)
{
    public Caller RequiredCaller => Caller ?? throw new InvalidOperationException("this route requires a caller");
}

/// <summary>One route of the API: the same table drives both hosts.</summary>
public sealed record ApiEndpoint(string Name, string Method, string Route, Access Access, Func<ApiContext, Task<ApiResponse>> Handle);

/// <summary>Endpoint names; the Functions app names each trigger after one.</summary>
public static class EndpointNames
{
    public const string ExecuteOrder = nameof(ExecuteOrder);
    public const string GetOrder = nameof(GetOrder);
    public const string ListOrders = nameof(ListOrders);
    public const string RollbackOrder = nameof(RollbackOrder);
    public const string CheckTransactionIntegrity = nameof(CheckTransactionIntegrity);
    public const string GetMyAccount = nameof(GetMyAccount);
    public const string ListPositions = nameof(ListPositions);
    public const string ListTrades = nameof(ListTrades);
    public const string CreateStrategy = nameof(CreateStrategy);
    public const string Health = nameof(Health);
    public const string UpsertInstruments = nameof(UpsertInstruments);
    public const string Deposit = nameof(Deposit);
    public const string SyncPositions = nameof(SyncPositions);
    public const string RunMaintenance = nameof(RunMaintenance);
    public const string SetPositionStops = nameof(SetPositionStops);
    public const string SetPrices = nameof(SetPrices);
}
