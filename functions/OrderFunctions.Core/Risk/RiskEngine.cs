using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;

namespace OrderFunctions.Core.Risk;

/// <summary>
/// The application's side of the risk engine (db/migrations/R__12_risk.sql). A price update queues, in its own
/// transaction, the positions whose stops it crossed and a margin check per symbol; this works that queue in
/// bounded batches (<see cref="RiskSettings.CloseBatchSize"/>), each its own transaction and round trip, until it
/// is empty or the time budget is spent (what remains is the next caller's: another price update, or the orphan
/// scan). Batches of other callers run at the same time without waiting on each other (SKIP LOCKED).
/// The stop-out level reaches the database here and only here.
/// </summary>
public sealed partial class RiskEngine(OrdersDatabase database, RiskSettings settings, TimeProvider time, ILogger<RiskEngine> logger)
{
    /// <summary>How long a price update's request works the queue before it answers with what is still pending.</summary>
    public static readonly TimeSpan RequestBudget = TimeSpan.FromSeconds(20);

    /// <summary>How long the orphan scan's backstop works it.</summary>
    public static readonly TimeSpan BackstopBudget = TimeSpan.FromMinutes(2);

    /// <summary>Failed batches after which a drain stops (the rest is the next caller's).</summary>
    public const int MaxFailedBatches = 5;

    private const string ProcessSql = "SELECT trading.process_risk_events(@StopOutLevel, @Limit)::text";

    private const string BackstopSql = "SELECT trading.risk_backstop()::text";

    public RiskSettings Settings => settings;

    /// <summary>Works the queue until nothing in it is ready, <see cref="MaxFailedBatches"/> batches have failed, or <paramref name="budget"/> is spent.</summary>
    public async Task<RiskRun> DrainAsync(TimeSpan budget, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var run = new RiskRun();
        while (true)
        {
            if (time.GetElapsedTime(started) >= budget)
            {
                run.Pending = true;
                break;
            }

            var batchStarted = time.GetTimestamp();
            // A repeat after a lost connection is harmless: the batch committed (its work is gone from the queue)
            // or it did not (the next batch takes the same work).
            var envelope = await database.CallAsync(DbRole.Maintenance, null, ProcessSql,
                new { settings.StopOutLevel, Limit = settings.CloseBatchSize }, Writes.Idempotently, cancellationToken);
            if ((bool?)envelope["success"] != true)
            {
                // The database counted the failure on the batch's work: a batch of several is retried one event at a
                // time, an event that failed alone waits before it is taken again, so the queue behind it goes on. A
                // failure that is not the work's own (every batch failing) ends the drain after a few.
                run.Error = (string?)envelope["error_message"] ?? "the risk batch failed";
                run.FailedBatches++;
                LogBatchFailed(run.Error);
                if (run.FailedBatches >= MaxFailedBatches)
                {
                    break;
                }

                continue;
            }

            var data = envelope["data"]!;
            if ((bool?)data["done"] == true)
            {
                break;
            }

            run.Add(data, time.GetElapsedTime(batchStarted).TotalMilliseconds);
        }

        run.ElapsedMs = time.GetElapsedTime(started).TotalMilliseconds;
        if (run.Closed > 0 || run.Pending)
        {
            LogDrained(run.Batches, run.StopLoss, run.TakeProfit, run.Liquidation, run.ElapsedMs, run.Pending);
        }

        return run;
    }

    /// <summary>The orphan scan's backstop: queues what price updates missed at today's prices, then works the queue.</summary>
    public async Task<(JsonObject Queued, RiskRun Run)> BackstopAsync(CancellationToken cancellationToken)
    {
        var envelope = await database.CallAsync(DbRole.Maintenance, null, BackstopSql, null, Writes.Idempotently, cancellationToken);
        var queued = envelope["data"]?["queued"]?.AsObject() ?? new JsonObject();
        return ((JsonObject)queued.DeepClone(), await DrainAsync(BackstopBudget, cancellationToken));
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Risk engine: {Batches} batch(es) closed {StopLoss} stop-loss, {TakeProfit} take-profit and {Liquidation} liquidation(s) in {ElapsedMs} ms; work pending: {Pending}")]
    private partial void LogDrained(int batches, int stopLoss, int takeProfit, int liquidation, double elapsedMs, bool pending);

    [LoggerMessage(Level = LogLevel.Error, Message = "Risk engine batch failed and its work stays queued: {Error}")]
    private partial void LogBatchFailed(string error);
}

/// <summary>What one drain of the queue did: the closes by reason, the write-offs they booked, and how its batches went.</summary>
public sealed class RiskRun
{
    public int Batches { get; private set; }
    public int StopLoss { get; private set; }
    public int TakeProfit { get; private set; }
    public int Liquidation { get; private set; }
    public int Closed => StopLoss + TakeProfit + Liquidation;
    public decimal WrittenOff { get; private set; }
    public double ElapsedMs { get; set; }

    /// <summary>The longest batch: how long one transaction of the risk engine held its locks.</summary>
    public double MaxBatchMs { get; private set; }

    /// <summary>The budget ran out with work still queued.</summary>
    public bool Pending { get; set; }

    /// <summary>The last failed batch's error, if any failed.</summary>
    public string? Error { get; set; }

    /// <summary>Batches that failed (their work stays queued, retried alone or later).</summary>
    public int FailedBatches { get; set; }

    internal void Add(JsonNode data, double batchMs)
    {
        Batches++;
        StopLoss += (int?)data["closed"]?["stop_loss"] ?? 0;
        TakeProfit += (int?)data["closed"]?["take_profit"] ?? 0;
        Liquidation += (int?)data["closed"]?["liquidation"] ?? 0;
        WrittenOff += (decimal?)data["written_off"] ?? 0;
        MaxBatchMs = Math.Max(MaxBatchMs, batchMs);
    }

    public JsonObject ToJson() => new()
    {
        ["closed"] = new JsonObject { ["stop_loss"] = StopLoss, ["take_profit"] = TakeProfit, ["liquidation"] = Liquidation },
        ["written_off"] = WrittenOff,
        ["batches"] = Batches,
        ["max_batch_ms"] = Math.Round(MaxBatchMs, 3),
        ["elapsed_ms"] = Math.Round(ElapsedMs, 3),
        ["pending"] = Pending,
        ["failed_batches"] = FailedBatches,
        ["error"] = Error,
    };
}
