using System.Diagnostics;
using System.Text.Json.Nodes;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>
/// Health: one database round trip within a hard time bound. Anonymous callers (load balancers, the deploy workflow)
/// get the status only; a caller with the admin role also gets the server and schema versions and the pool's state.
/// <para>
/// The probe takes a connection from the pool like any request. So an instance whose pooled connections still work
/// (a PostgreSQL postmaster that stopped accepting new connections leaves existing backends serving) is healthy: it
/// can do its work, and failing it would only take capacity away. It is unhealthy when no answer comes in time.
/// </para>
/// </summary>
public sealed class HealthHandler(OrdersDatabase database, PoolMetrics pool, TokenValidator tokens)
{
    /// <summary>The probe's bound, however the database misbehaves (a stalled connection attempt included).</summary>
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(5);

    public async Task<ApiResponse> CheckAsync(ApiContext context)
    {
        const string sql = """
            SELECT current_setting('server_version') AS server_version,
                   (SELECT c.version FROM evolve.changelog c
                    WHERE c.success AND c.name LIKE 'V%'
                    ORDER BY c.id DESC LIMIT 1) AS schema_version
            """;
        var details = await IsAdminAsync(context);
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        budget.CancelAfter(Budget);
        var started = Stopwatch.GetTimestamp();
        var probe = database.QueryAsync(DbRole.Api, null, sql, null, Writes.Nothing, grid => grid.ReadSingleAsync<HealthRow>(), budget.Token);
        try
        {
            // WaitAsync bounds the wait even where the driver does not heed the token (a connection attempt to a stopped
            // postmaster waits for its own connect timeout); the abandoned call ends on its own.
            var row = await probe.WaitAsync(Budget, context.CancellationToken);
            var healthy = new JsonObject { ["status"] = "healthy" };
            if (details)
            {
                healthy["database"] = new JsonObject
                {
                    ["reachable"] = true,
                    ["round_trip_ms"] = Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 2),
                    ["server_version"] = row.ServerVersion,
                    ["schema_version"] = row.SchemaVersion,
                };
                healthy["pool"] = pool.Snapshot();
            }

            return ApiResponse.Success(200, healthy);
        }
        catch (Exception e) when (e is DatabaseUnavailableException or DatabaseTimeoutException or TimeoutException
                                  || (e is OperationCanceledException && !context.CancellationToken.IsCancellationRequested))
        {
            _ = probe.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            var unhealthy = new JsonObject { ["status"] = "unhealthy" };
            if (details)
            {
                unhealthy["database"] = new JsonObject { ["reachable"] = false };
                unhealthy["pool"] = pool.Snapshot();
            }

            return ApiResponse.Error(ErrorCodes.ServiceUnavailable,
                $"the database did not answer within {Budget.TotalSeconds:0} s", unhealthy);
        }
    }

    /// <summary>An admin's valid token shows the details; anything else (none, invalid, a trader's) just the status.</summary>
    private async Task<bool> IsAdminAsync(ApiContext context) =>
        context.Request.Header("Authorization") is { Length: > 0 } authorization
        && (await tokens.ValidateAsync(authorization, context.CancellationToken)).Caller is { IsAdmin: true };

    private sealed record HealthRow(string ServerVersion, string? SchemaVersion);
}
