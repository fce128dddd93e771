using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderFunctions.Core;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Jobs.Tests.Support;

namespace OrderFunctions.Jobs.Tests;

/// <summary>Each job's advisory lock: two instances firing together do the work once; every run is recorded.</summary>
public class JobLockTests : IAsyncLifetime
{
    /// <summary>Whether the jobs reach the database through PgBouncer (transaction pooling); see the derived class.</summary>
    protected virtual bool ThroughPgBouncer => false;

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private JobsDatabase _db = null!;

    public async Task InitializeAsync() => _db = await JobsDatabase.CreateAsync(ThroughPgBouncer);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Fact]
    public async Task Two_retention_jobs_started_together_archive_once_and_record_the_other_run_as_skipped()
    {
        // Arrange: old rows to archive; uploads wait at a gate until one of the runs has returned
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        var ids = await _db.IdsAsync(Tables.BalanceAuditLog);
        await _db.AgeRowsAsync(Tables.BalanceAuditLog, ids[^1], TimeSpan.FromDays(8 * 366));
        var archive = await ArchiveContainer.CreateAsync();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stores = new[] { new GatedStore(archive.Store(), gate.Task), new GatedStore(archive.Store(), gate.Task) };
        var jobs = stores.Select(s => new AuditRetentionJob(_db.Orders, s, new MaintenanceSettings(), TimeProvider.System,
            NullLogger<AuditRetentionJob>.Instance)).ToArray();

        // Act: both start; the lock holder waits at the gate, so the other must finish first
        var runs = jobs.Select(j => Task.Run(() => j.RunAsync("timer", CancellationToken.None))).ToArray();
        var firstDone = await Task.WhenAny(runs).WaitAsync(Deadline);
        gate.SetResult();
        await Task.WhenAll(runs).WaitAsync(Deadline);

        // Assert
        Assert.Equal(JobRun.Skipped, (await firstDone).Status);
        var results = runs.Select(r => r.Result).ToList();
        Assert.Equal([JobRun.Skipped, JobRun.Succeeded], results.Select(r => r.Status).Order(StringComparer.Ordinal));
        var worker = results.Single(r => r.Status == JobRun.Succeeded);
        Assert.Equal(ids.Count, (long?)worker.Findings["counts"]![Tables.BalanceAuditLog]);
        Assert.Equal(1, stores.Count(s => s.Waiting.IsCompleted));
        var recorded = await _db.RunsAsync();
        Assert.Equal([JobRun.Skipped, JobRun.Succeeded], recorded.Select(r => r.Status).Order(StringComparer.Ordinal));
        Assert.All(recorded, r => Assert.Equal((JobNames.AuditRetention, "timer"), (r.Job, r.Trigger)));
        Assert.All(recorded, r => Assert.NotNull(r.FinishedAt));
        Assert.Equal(ids.Count, (await _db.ArchivesAsync()).Sum(a => a.RowCount));
    }

    [Fact]
    public async Task Orphan_scan_is_recorded_as_skipped_while_another_session_holds_its_lock()
    {
        await using var other = await _db.Fixture.OpenAdminConnectionAsync();
        await using var transaction = await other.BeginTransactionAsync();
        await other.ExecuteAsync("SELECT pg_advisory_xact_lock(@Key)", new { Key = OrphanScanJob.LockKey }, transaction);
        var job = new OrphanScanJob(_db.Orders, new MaintenanceSettings(), _db.Risk(), JobsDatabase.NoPublishedHeads, NullLogger<OrphanScanJob>.Instance);

        var skipped = await job.RunAsync("timer", CancellationToken.None);
        await transaction.CommitAsync();
        var next = await job.RunAsync("timer", CancellationToken.None);

        Assert.Equal(JobRun.Skipped, skipped.Status);
        Assert.Equal(JobRun.Skipped, (await _db.RunAsync(skipped.RunId)).Status);
        Assert.Equal(JobRun.Succeeded, next.Status);
    }

    [Fact]
    public async Task A_job_holds_its_lock_only_in_a_transaction_and_releases_it_when_the_run_ends()
    {
        var job = new OrphanScanJob(_db.Orders, new MaintenanceSettings(), _db.Risk(), JobsDatabase.NoPublishedHeads, NullLogger<OrphanScanJob>.Instance);

        await job.RunAsync("test", CancellationToken.None);

        // No session-level advisory lock survives the run on a pooled connection.
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"));
        Assert.True(await _db.AdminAsync(c => c.QuerySingleAsync<bool>(
            "SELECT pg_try_advisory_xact_lock(@Key)", new { Key = OrphanScanJob.LockKey })));
    }

    [Fact]
    public async Task A_run_left_running_by_a_stopped_instance_is_closed_as_failed_by_the_next_run()
    {
        var abandoned = await _db.AdminAsync(c => c.QuerySingleAsync<long>(
            "INSERT INTO trading.maintenance_runs (job, trigger, status, started_at) VALUES ('orphan-scan', 'timer', 'running', now() - interval '1 hour') RETURNING id"));
        var job = new OrphanScanJob(_db.Orders, new MaintenanceSettings(), _db.Risk(), JobsDatabase.NoPublishedHeads, NullLogger<OrphanScanJob>.Instance);

        var run = await job.RunAsync("timer", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        var closed = await _db.RunAsync(abandoned);
        Assert.Equal(JobRun.Failed, closed.Status);
        Assert.StartsWith("abandoned", closed.Error, StringComparison.Ordinal);
        Assert.NotNull(closed.FinishedAt);
    }

    [Fact]
    public async Task A_job_run_is_recorded_with_its_trigger_findings_and_times()
    {
        var job = new OrphanScanJob(_db.Orders, new MaintenanceSettings(), _db.Risk(), JobsDatabase.NoPublishedHeads, NullLogger<OrphanScanJob>.Instance);

        var run = await job.RunAsync("admin:" + Guid.NewGuid(), CancellationToken.None);

        var stored = await _db.RunAsync(run.RunId);
        Assert.Equal((run.Job, run.Trigger, run.Status, run.Error), (stored.Job, stored.Trigger, stored.Status, stored.Error));
        Assert.Equal(run.StartedAt, stored.StartedAt);
        Assert.Equal(run.FinishedAt, stored.FinishedAt);
        Assert.True(run.FinishedAt >= run.StartedAt);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(run.Findings, stored.FindingsJson), stored.Findings);
    }
}
