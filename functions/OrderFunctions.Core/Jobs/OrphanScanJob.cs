using System.Globalization;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;
using OrderFunctions.Core.Risk;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// Fails orders stuck in pending/executing past the threshold (through trading.rollback_order_execution, acting
/// as each order's trader, so each is audited with a FAILED execution log), then reports what the constraints
/// should have made impossible: orphaned rows, accounts that differ from their ledger or their positions, and
/// broken audit and execution-log chains. Every check runs even when another fails; findings go to the run
/// record (one key per check with its rows, plus counts) and the log.
/// It is also the risk engine's backstop (<see cref="RiskBackstop"/>): it queues the stops that are crossed and the
/// accounts below the stop-out level at today's prices that no price update acted on, and works that queue.
/// </summary>
public sealed partial class OrphanScanJob(OrdersDatabase database, MaintenanceSettings settings, RiskEngine risk, PublishedChainHeads published,
    ILogger<OrphanScanJob> logger) : IMaintenanceJob
{
    /// <summary>The job's advisory lock key (pg_try_advisory_xact_lock).</summary>
    internal const long LockKey = 0x4F72_6465_7246_0001;

    internal const string StuckOrders = "stuck_orders";

    internal const string PublishedHeadMismatches = "published_head_mismatches";

    internal const string RiskBackstop = "risk_backstop";

    /// <summary>Stuck orders failed per run; the next run takes the rest.</summary>
    private const int StuckOrdersPerRun = 500;

    /// <summary>Rows kept per check in the findings (the count is always exact).</summary>
    private const int MaxRowsPerCheck = 1000;

    private const string StuckOrdersSql = """
        SELECT user_id, order_id, status, created_at
        FROM trading.stuck_orders(make_interval(mins => @Minutes), @Limit);
        """;

    // Only while the order is still unfinished: rollback_order_execution would compensate an order that
    // executed since the scan listed it.
    private const string FailStuckOrderSql = """
        SELECT CASE WHEN EXISTS (SELECT 1 FROM trading.orders o
                                 WHERE o.user_id = @UserId AND o.id = @OrderId AND o.status IN ('pending', 'executing'))
                    THEN trading.rollback_order_execution(@OrderId, @Reason)::text
               END;
        """;

    private const string ReportHead = """
        SELECT count(*), coalesce(jsonb_agg(to_jsonb(r) - 'n' ORDER BY r.n) FILTER (WHERE r.n <= @MaxRows), '[]')::text
        FROM (SELECT c.*, row_number() OVER () AS n FROM
        """;

    private const string ReportTail = " c) r;";

    /// <summary>
    /// The report checks by name: each names the set-returning function that finds its rows. The two chain checks verify
    /// the rows after each account's chain checkpoint and move the checkpoints of the accounts that verify, so each run
    /// costs what was written since the last one.
    /// </summary>
    internal static readonly IReadOnlyList<(string Name, string Sql)> Checks =
    [
        ("orphan_rows", ReportHead + " trading.orphan_rows()" + ReportTail),
        ("ledger_mismatches", ReportHead + " trading.ledger_mismatches()" + ReportTail),
        ("balance_audit_chain_breaks", ReportHead + " trading.verify_balance_audit_chains()" + ReportTail),
        ("margin_mismatches", ReportHead + " trading.margin_mismatches()" + ReportTail),
        ("execution_log_chain_breaks", ReportHead + " trading.verify_execution_log_chains()" + ReportTail),
        // Risk: write-offs that disagree with their orders or with the balance they left (R__12).
        ("write_off_mismatches", ReportHead + " trading.write_off_mismatches()" + ReportTail),
    ];

    // The database against the heads last published outside it (see PublishedChainHeads).
    private const string PublishedHeadsSql = ReportHead + " trading.published_head_mismatches(@Heads::jsonb)" + ReportTail;

    public string Name => JobNames.OrphanScan;

    public Task<JobRun> RunAsync(string trigger, CancellationToken cancellationToken) =>
        new MaintenanceRuns(database, logger).RunExclusiveAsync(Name, LockKey, trigger, ScanAsync, cancellationToken);

    private async Task<string?> ScanAsync(long runId, JsonObject findings, CancellationToken cancellationToken)
    {
        var counts = new JsonObject();
        var errors = new JsonObject();

        var failedOrders = await RunCheckAsync(StuckOrders, findings, counts, errors, () => FailStuckOrdersAsync(errors, cancellationToken), cancellationToken);
        await RunCheckAsync(RiskBackstop, findings, counts, errors, () => RunRiskBackstopAsync(errors, cancellationToken), cancellationToken);
        var problems = 0L;
        foreach (var (name, sql) in Checks)
        {
            problems += await RunCheckAsync(name, findings, counts, errors, async () =>
            {
                // Writes.Idempotently: the chain checks move checkpoints, and doing that twice changes nothing.
                var (total, rows) = await database.QueryAsync(DbRole.Maintenance, null, sql, new { MaxRows = MaxRowsPerCheck }, Writes.Idempotently,
                    grid => grid.ReadSingleAsync<(long, string)>(), cancellationToken);
                return (total, JsonNode.Parse(rows)!.AsArray());
            }, cancellationToken);
        }

        problems += await RunCheckAsync(PublishedHeadMismatches, findings, counts, errors, () => ComparePublishedHeadsAsync(findings, cancellationToken),
            cancellationToken);

        findings["counts"] = counts;
        LogScanned(runId, failedOrders, problems);
        if (errors.Count == 0)
        {
            return null;
        }

        findings["errors"] = errors;
        return "checks failed: " + string.Join(", ", errors.Select(e => e.Key));
    }

    /// <summary>Runs one check; a failing check becomes an error entry and the scan goes on.</summary>
    private async Task<long> RunCheckAsync(string name, JsonObject findings, JsonObject counts, JsonObject errors,
        Func<Task<(long Count, JsonArray Rows)>> check, CancellationToken cancellationToken)
    {
        try
        {
            var (count, rows) = await check();
            findings[name] = rows;
            counts[name] = count;
            if (count > 0)
            {
                LogFound(name, count);
            }

            return count;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            errors[name] = ErrorText.Describe(e);
            LogCheckFailed(e, name);
            return 0;
        }
    }

    /// <summary>Compares every account with the latest published heads; findings say which publication, or why none was compared.</summary>
    private async Task<(long, JsonArray)> ComparePublishedHeadsAsync(JsonObject findings, CancellationToken cancellationToken)
    {
        PublishedChainHeads.Publication? latest;
        try
        {
            latest = await published.LatestAsync(fresh: true, cancellationToken);
        }
        catch (ArchiveStoreException e) when (e.NotConfigured)
        {
            findings["published_heads"] = new JsonObject { ["compared"] = false, ["reason"] = e.Message };
            return (0, []);
        }

        if (latest is null)
        {
            findings["published_heads"] = new JsonObject { ["compared"] = false, ["reason"] = "no chain heads have been published yet" };
            return (0, []);
        }

        findings["published_heads"] = new JsonObject
        {
            ["compared"] = true,
            ["blob_name"] = latest.BlobName,
            ["published_at"] = Json.Format(latest.PublishedAt.UtcDateTime),
            ["accounts"] = latest.Heads.Count,
        };
        var (total, rows) = await database.QueryAsync(DbRole.Maintenance, null, PublishedHeadsSql,
            new { MaxRows = MaxRowsPerCheck, Heads = latest.HeadsJson() }, Writes.Nothing, grid => grid.ReadSingleAsync<(long, string)>(), cancellationToken);
        return (total, JsonNode.Parse(rows)!.AsArray());
    }

    private async Task<(long, JsonArray)> FailStuckOrdersAsync(JsonObject errors, CancellationToken cancellationToken)
    {
        var stuck = await database.QueryAsync(DbRole.Maintenance, null, StuckOrdersSql,
            new { Minutes = settings.OrphanThresholdMinutes, Limit = StuckOrdersPerRun }, Writes.Nothing,
            grid => grid.ReadAsync<(Guid UserId, Guid OrderId, string Status, DateTime CreatedAt)>(), cancellationToken);
        var rows = new JsonArray();
        var failures = 0;
        foreach (var order in stuck)
        {
            var row = new JsonObject
            {
                ["user_id"] = order.UserId.ToString(),
                ["order_id"] = order.OrderId.ToString(),
                ["status"] = order.Status,
                ["created_at"] = Json.Format(order.CreatedAt),
            };
            rows.Add(row);
            try
            {
                // Its own unit of work, acting as the order's trader, so the function's audit trail names them.
                var response = await database.QueryAsync(DbRole.Maintenance, order.UserId, FailStuckOrderSql,
                    new { order.UserId, order.OrderId, Reason = ReasonFor(order.Status) },
                    Writes.Idempotently, grid => grid.ReadSingleAsync<string?>(), cancellationToken);
                var envelope = response is null ? null : JsonNode.Parse(response)!.AsObject();
                if (envelope is null)
                {
                    row["outcome"] = "left alone: no longer pending or executing";
                }
                else if ((bool?)envelope["success"] == true)
                {
                    row["outcome"] = "failed";
                    row["transaction_id"] = envelope["data"]?["transaction_id"]?.DeepClone();
                    LogOrderFailed(order.OrderId, order.UserId, order.Status, order.CreatedAt);
                }
                else
                {
                    failures++;
                    row["outcome"] = "error";
                    row["error_code"] = (string?)envelope["error_code"];
                    row["error_message"] = (string?)envelope["error_message"];
                    LogOrderNotFailed(order.OrderId, order.UserId, (string?)envelope["error_code"]);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failures++;
                row["outcome"] = "error";
                row["error_message"] = ErrorText.Describe(e);
                LogOrderNotFailed(order.OrderId, order.UserId, e.GetType().Name);
            }
        }

        if (failures > 0)
        {
            errors[StuckOrders] = $"{failures} of {rows.Count} stuck orders could not be failed";
        }

        return (rows.Count, rows);
    }

    /// <summary>The risk backstop: what it queued and closed. Its count is the positions it closed.</summary>
    private async Task<(long, JsonArray)> RunRiskBackstopAsync(JsonObject errors, CancellationToken cancellationToken)
    {
        var (queued, run) = await risk.BackstopAsync(cancellationToken);
        var report = run.ToJson();
        report["queued"] = queued;
        if (run.Error is not null)
        {
            errors[RiskBackstop] = run.Error;
        }

        if (run.Closed > 0)
        {
            LogBackstopClosed(run.Closed);
        }

        return (run.Closed, new JsonArray(report));
    }

    private string ReasonFor(string status) =>
        string.Create(CultureInfo.InvariantCulture, $"orphan scan: {status} for more than {settings.OrphanThresholdMinutes} minutes");

    [LoggerMessage(Level = LogLevel.Warning, Message = "Orphan scan failed order {OrderId} of {UserId}: {Status} since {CreatedAt:o}")]
    private partial void LogOrderFailed(Guid orderId, Guid userId, string status, DateTime createdAt);

    [LoggerMessage(Level = LogLevel.Error, Message = "Orphan scan could not fail stuck order {OrderId} of {UserId}: {ErrorCode}")]
    private partial void LogOrderNotFailed(Guid orderId, Guid userId, string? errorCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Orphan scan's risk backstop closed {Count} position(s) that no price update had acted on")]
    private partial void LogBackstopClosed(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Orphan scan check {Check} found {Count} row(s)")]
    private partial void LogFound(string check, long count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Orphan scan check {Check} failed; the other checks still ran")]
    private partial void LogCheckFailed(Exception exception, string check);

    [LoggerMessage(Level = LogLevel.Information, Message = "Orphan scan run {RunId} failed {StuckOrders} stuck order(s) and found {Problems} problem row(s)")]
    private partial void LogScanned(long runId, long stuckOrders, long problems);
}
