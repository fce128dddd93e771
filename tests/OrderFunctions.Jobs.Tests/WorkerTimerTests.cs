using Dapper;
using OrderFunctions.Core;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Jobs.Tests.Support;
using OrderFunctions.Testing;
using OrderFunctions.Testing.FunctionsHost;

namespace OrderFunctions.Jobs.Tests;

/// <summary>
/// The maintenance timers of the Azure Functions app, fired by the worker test host into the real worker (as the
/// Functions host fires them) and doing their jobs against PostgreSQL and Azurite: the orphan scan fails a stuck
/// order, the retention job archives old audit rows to Blob Storage.
/// </summary>
public sealed class WorkerTimerTests : IAsyncLifetime
{
    private static readonly TimeSpan EightYears = TimeSpan.FromDays(8 * 366);

    private JobsDatabase _db = null!;
    private ArchiveContainer _archive = null!;
    private FunctionsWorkerHost? _worker;

    public async Task InitializeAsync()
    {
        _db = await JobsDatabase.CreateAsync();
        _archive = await ArchiveContainer.CreateAsync();
    }

    public async Task DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }

        await _db.DisposeAsync();
    }

    [Theory]
    [InlineData(false, "timer")]
    [InlineData(true, "timer (past due)")]
    public async Task Orphan_scan_timer_fired_through_the_worker_fails_an_order_stuck_past_the_threshold(bool isPastDue, string trigger)
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        var stuck = await _db.InsertStuckOrderAsync(user, symbol, "executing", TimeSpan.FromMinutes(30));
        var worker = await StartWorkerAsync();

        var invocation = await worker.InvokeTimerAsync("OrphanScan", isPastDue);

        Assert.Equal("Success", invocation.Status);
        Assert.Equal("failed", await StatusAsync(stuck));
        var run = Assert.Single(await _db.RunsAsync());
        Assert.Equal((JobNames.OrphanScan, trigger, JobRun.Succeeded), (run.Job, run.Trigger, run.Status));
        Assert.Equal(stuck.ToString(), (string?)run.FindingsJson[OrphanScanJob.StuckOrders]![0]!["order_id"]);
        worker.EnsureHealthy();
    }

    [Fact]
    public async Task Audit_retention_timer_fired_through_the_worker_archives_old_rows_to_blob_storage_and_deletes_them()
    {
        var symbol = await _db.NewInstrumentAsync();
        var alice = await _db.NewTraderAsync(10_000m);
        await _db.ExecutedOrderAsync(alice, symbol, "buy", 2m);
        await _db.ExecutedOrderAsync(alice, symbol, "sell", 1m);
        var oldAuditMaxId = await _db.MaxIdAsync(Tables.BalanceAuditLog);
        var archived = await _db.ArchiveLinesAsync(Tables.BalanceAuditLog, oldAuditMaxId);
        await _db.ExecutedOrderAsync(alice, symbol, "buy", 1m);
        await _db.AgeRowsAsync(Tables.BalanceAuditLog, oldAuditMaxId, EightYears);
        var worker = await StartWorkerAsync();

        var invocation = await worker.InvokeTimerAsync("AuditRetention", isPastDue: false);

        Assert.Equal("Success", invocation.Status);
        var run = Assert.Single(await _db.RunsAsync());
        Assert.Equal((JobNames.AuditRetention, "timer", JobRun.Succeeded), (run.Job, run.Trigger, run.Status));
        Assert.DoesNotContain(await _db.IdsAsync(Tables.BalanceAuditLog), id => id <= oldAuditMaxId);
        var archives = (await _db.ArchivesAsync()).Where(a => a.TableName == Tables.BalanceAuditLog).ToList();
        Assert.Equal(archived.Count, archives.Sum(a => a.RowCount));
        var blobs = await _archive.BlobNamesAsync(Tables.BalanceAuditLog + "/");
        Assert.All(archives, a => Assert.Contains(a.BlobName, blobs));
        worker.EnsureHealthy();
    }

    [Fact]
    public async Task Orphan_scan_fires_on_the_schedule_of_its_setting_and_fails_the_stuck_order()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        var stuck = await _db.InsertStuckOrderAsync(user, symbol, "pending", TimeSpan.FromMinutes(30));
        var worker = await StartWorkerAsync(orphanScanSchedule: "*/2 * * * * *");

        var fired = await worker.WaitForInvocationAsync("OrphanScan", after: 0, TimeSpan.FromSeconds(60));

        Assert.Equal("Success", fired.Status);
        Assert.Equal("failed", await StatusAsync(stuck));
        Assert.Contains(await _db.RunsAsync(), r => r.Job == JobNames.OrphanScan && r.Trigger == "timer" && r.Status == JobRun.Succeeded);
    }

    [Fact]
    public async Task Every_registered_job_has_one_worker_timer_on_its_schedule_setting_and_firing_it_runs_that_job()
    {
        // The worker as the Functions host loads it: a job registered without a timer, or a timer on another job's
        // setting or running another job, fails here.
        var worker = await StartWorkerAsync();
        var timers = worker.Functions.Where(f => f.IsTimer).ToList();

        Assert.Equal(MaintenanceJobs.All.Count, timers.Count);
        foreach (var job in MaintenanceJobs.All)
        {
            var timer = Assert.Single(timers, t => t.Schedule == job.ScheduleBinding);
            var before = (await _db.RunsAsync()).Select(r => r.Id).ToHashSet();

            var invocation = await worker.InvokeTimerAsync(timer.Name, isPastDue: false);

            Assert.Equal("Success", invocation.Status);
            var run = Assert.Single(await _db.RunsAsync(), r => !before.Contains(r.Id));
            Assert.Equal((job.Name, "timer"), (run.Job, run.Trigger));
        }

        worker.EnsureHealthy();
    }

    private async Task<FunctionsWorkerHost> StartWorkerAsync(string? orphanScanSchedule = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Database__ConnectionString"] = _db.Fixture.AppConnectionString,
            ["Auth__Issuer"] = "https://issuer.jobs-tests.invalid/",
            ["Auth__Audience"] = "api://jobs-tests",
            ["Auth__SigningKey"] = "jobs-tests-hs256-signing-key-0123456789abcdef",
            ["ArchiveStorage__ConnectionString"] = _archive.Settings.ConnectionString,
            ["ArchiveStorage__serviceUri"] = "",
            ["ArchiveStorage__ContainerName"] = _archive.Settings.ContainerName,
            ["Maintenance__RetentionBatchSize"] = "2",
            [FunctionsWorkerHost.BodySizeLimitSetting] = RepositorySettings.Sample(FunctionsWorkerHost.BodySizeLimitSetting),
        };
        // Far from now unless a test asks for its own: no run but the ones a test fires.
        foreach (var job in MaintenanceJobs.All)
        {
            settings[job.ScheduleSetting] = "0 0 0 1 1 *";
        }

        if (orphanScanSchedule is not null)
        {
            settings[Schedules.OrphanScanSetting] = orphanScanSchedule;
        }

        _worker = await FunctionsWorkerHost.StartAsync(new FunctionsHostOptions { Settings = settings, RunTimersOnSchedule = orphanScanSchedule is not null });
        return _worker;
    }

    private Task<string> StatusAsync(Guid order) =>
        _db.AdminAsync(c => c.QuerySingleAsync<string>("SELECT status FROM trading.orders WHERE id = @Id", new { Id = order }));
}
