using System.Diagnostics;
using System.Text.Json.Nodes;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>Anonymous health: one database round trip, the schema version, and the connection pool's state.</summary>
public sealed class HealthHandler(OrdersDatabase database, PoolMetrics pool)
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(5);

    public async Task<ApiResponse> CheckAsync(ApiContext context)
    {
        const string sql = """
            SELECT current_setting('server_version') AS server_version,
                   (SELECT c.version FROM evolve.changelog c
                    WHERE c.success AND c.name LIKE 'V%'
                    ORDER BY c.id DESC LIMIT 1) AS schema_version
            """;
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        budget.CancelAfter(Budget);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var row = await database.QueryAsync(DbRole.Api, null, sql, null, Writes.Nothing,
                grid => grid.ReadSingleAsync<HealthRow>(), budget.Token);
            return ApiResponse.Success(200, new JsonObject
            {
                ["status"] = "healthy",
                ["database"] = new JsonObject
                {
                    ["reachable"] = true,
                    ["round_trip_ms"] = Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 2),
                    ["server_version"] = row.ServerVersion,
                    ["schema_version"] = row.SchemaVersion,
                },
                ["pool"] = pool.Snapshot(),
            });
        }
        catch (Exception e) when (e is DatabaseUnavailableException or DatabaseTimeoutException
                                  || (e is OperationCanceledException && !context.CancellationToken.IsCancellationRequested))
        {
            return ApiResponse.Error(ErrorCodes.ServiceUnavailable, "the database is unreachable", new JsonObject
            {
                ["status"] = "unhealthy",
                ["database"] = new JsonObject { ["reachable"] = false },
                ["pool"] = pool.Snapshot(),
            });
        }
    }

    private sealed record HealthRow(string ServerVersion, string? SchemaVersion);
}
