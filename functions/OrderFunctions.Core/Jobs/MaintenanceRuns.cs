using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Data;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// What every maintenance job does around its work: takes the job's advisory lock (or records a skipped run),
/// records the run in trading.maintenance_runs as orders_maintenance (running, then succeeded or failed with
/// its findings), and turns any failure of the work into a failed run instead of an exception.
/// </summary>
internal sealed partial class MaintenanceRuns(OrdersDatabase database, ILogger logger)
{
    /// <summary>Why a failed run failed, when the work reports problems without throwing.</summary>
    public delegate Task<string?> Work(long runId, JsonObject findings, CancellationToken cancellationToken);

    // The lock is held for the whole run, so a run still marked running when the lock is free belongs to an
    // instance that stopped before finishing: close it as failed, so no run stays "running" for ever.
    private const string StartSql = """
        WITH abandoned AS (
            UPDATE trading.maintenance_runs
            SET status = 'failed', error = 'abandoned: the instance running it stopped before it finished', finished_at = now()
            WHERE job = @Job AND status = 'running'
            RETURNING id)
        INSERT INTO trading.maintenance_runs (job, trigger, status)
        VALUES (@Job, @Trigger, 'running')
        RETURNING id AS run_id, started_at, (SELECT count(*) FROM abandoned) AS abandoned;
        """;

    private const string FinishSql = """
        UPDATE trading.maintenance_runs
        SET status = @Status, findings = @Findings::jsonb, error = @Error, finished_at = now()
        WHERE id = @RunId
        RETURNING finished_at;
        """;

    private const string SkippedSql = """
        INSERT INTO trading.maintenance_runs (job, trigger, status, findings, finished_at)
        VALUES (@Job, @Trigger, 'skipped', @Findings::jsonb, now())
        RETURNING id AS run_id, started_at, finished_at;
        """;

    private static readonly TimeSpan RecordTimeout = TimeSpan.FromSeconds(30);

    public async Task<JobRun> RunExclusiveAsync(string job, long lockKey, string trigger, Work work, CancellationToken cancellationToken)
    {
        trigger = string.IsNullOrWhiteSpace(trigger) ? "unknown" : trigger.Length > 64 ? trigger[..64] : trigger;
        var jobLock = await JobLock.TryAcquireAsync(database.DataSource, lockKey, cancellationToken);
        if (jobLock is null)
        {
            return await RecordSkippedAsync(job, trigger, cancellationToken);
        }

        await using (jobLock)
        {
            var (runId, startedAt, abandoned) = await database.QueryAsync(DbRole.Maintenance, null, StartSql,
                new { Job = job, Trigger = trigger }, Writes.NotIdempotently,
                grid => grid.ReadSingleAsync<(long, DateTime, long)>(), cancellationToken);
            if (abandoned > 0)
            {
                LogAbandoned(job, abandoned);
            }

            LogStarted(job, runId, trigger);
            var findings = new JsonObject();
            string? error;
            try
            {
                error = await work(runId, findings, cancellationToken);
            }
            catch (Exception e)
            {
                error = ErrorText.Describe(e);
                LogWorkFailed(e, job, runId);
            }

            var status = error is null ? JobRun.Succeeded : JobRun.Failed;
            // Recorded even when the run was cancelled (host shutdown), so it does not stay "running".
            using var recordTimeout = new CancellationTokenSource(RecordTimeout);
            var finishedAt = await database.QueryAsync(DbRole.Maintenance, null, FinishSql,
                new { RunId = runId, Status = status, Findings = findings.ToJsonString(), Error = error }, Writes.Idempotently,
                grid => grid.ReadSingleAsync<DateTime>(), recordTimeout.Token);
            LogFinished(job, runId, status);
            return new JobRun(runId, job, trigger, status, findings, error, startedAt, finishedAt);
        }
    }

    private async Task<JobRun> RecordSkippedAsync(string job, string trigger, CancellationToken cancellationToken)
    {
        var findings = new JsonObject { ["reason"] = "another instance holds the job's lock and is running it now" };
        var (runId, startedAt, finishedAt) = await database.QueryAsync(DbRole.Maintenance, null, SkippedSql,
            new { Job = job, Trigger = trigger, Findings = findings.ToJsonString() }, Writes.NotIdempotently,
            grid => grid.ReadSingleAsync<(long, DateTime, DateTime)>(), cancellationToken);
        LogSkipped(job, runId);
        return new JobRun(runId, job, trigger, JobRun.Skipped, findings, null, startedAt, finishedAt);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance job {Job} run {RunId} started by {Trigger}")]
    private partial void LogStarted(string job, long runId, string trigger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance job {Job} run {RunId} {Status}")]
    private partial void LogFinished(string job, long runId, string status);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance job {Job} run {RunId} skipped: another instance holds its lock")]
    private partial void LogSkipped(string job, long runId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance job {Job} closed {Count} abandoned run(s) as failed")]
    private partial void LogAbandoned(string job, long count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Maintenance job {Job} run {RunId} failed")]
    private partial void LogWorkFailed(Exception exception, string job, long runId);
}
