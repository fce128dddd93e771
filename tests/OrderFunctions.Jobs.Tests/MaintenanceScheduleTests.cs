using Dapper;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Jobs.Tests.Support;
using OrderFunctions.LocalHost;

namespace OrderFunctions.Jobs.Tests;

/// <summary>The timer side: both hosts read the same schedule settings, and LocalHost fires the registered jobs on them.</summary>
public sealed class MaintenanceScheduleTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public void The_local_scheduler_reads_each_registered_job_s_schedule_from_the_setting_its_Functions_timer_binds()
    {
        // A schedule of its own for every job, so that a job reading another's setting shows.
        var values = MaintenanceJobs.All.Select((job, i) => (job, schedule: $"0 {i} 3 * * *"))
            .ToDictionary(x => x.job.ScheduleSetting, x => (string?)x.schedule);
        var scheduler = new MaintenanceScheduler([], Load(values), TimeProvider.System, NullLogger<MaintenanceScheduler>.Instance);

        Assert.All(MaintenanceJobs.All, job =>
        {
            Assert.Equal("%" + job.ScheduleSetting + "%", job.ScheduleBinding);
            Assert.Equal(values[job.ScheduleSetting], scheduler.ScheduleOf(job.Name));
        });
    }

    [Fact]
    public async Task LocalHost_runs_the_maintenance_scheduler_over_every_registered_job()
    {
        // LocalHost as its Program builds it (the API tests' factory removes the scheduler, so this is where it is tested).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:ConnectionString"] = "Host=127.0.0.1;Database=unused",
            ["Auth:Issuer"] = "https://issuer.jobs-tests.invalid/",
            ["Auth:Audience"] = "api://jobs-tests",
            ["Auth:SigningKey"] = "jobs-tests-hs256-signing-key-0123456789abcdef",
        });
        builder.AddOrderFunctionsLocalHost();
        await using var app = builder.Build();

        var scheduler = Assert.Single(app.Services.GetServices<IHostedService>().OfType<MaintenanceScheduler>());

        Assert.Equal(JobNames.All, scheduler.Jobs.Select(j => j.Name));
        Assert.All(MaintenanceJobs.All, job => Assert.Equal(job.DefaultSchedule, scheduler.ScheduleOf(job.Name)));
    }

    [Fact]
    public void Default_schedules_are_valid_six_field_cron_expressions()
    {
        var scheduler = new MaintenanceScheduler([], Load([]), TimeProvider.System, NullLogger<MaintenanceScheduler>.Instance);

        foreach (var job in JobNames.All)
        {
            Assert.NotNull(MaintenanceScheduler.Parse(scheduler.ScheduleOf(job)).GetNextOccurrence(DateTime.UtcNow));
        }
    }

    [Fact]
    public async Task Every_registered_job_is_resolved_for_the_scheduler_and_the_admin_route()
    {
        var services = new ServiceCollection()
            .AddLogging()
            .AddOrderFunctions(Configuration(new() { ["Database:ConnectionString"] = "Host=127.0.0.1;Database=unused" }));
        await using var provider = services.BuildServiceProvider();

        var jobs = provider.GetServices<IMaintenanceJob>().ToList();

        Assert.Equal(JobNames.All, jobs.Select(j => j.Name));
        Assert.Equal(MaintenanceJobs.All.Select(j => j.JobType), jobs.Select(j => j.GetType()));
        Assert.IsType<BlobArchiveStore>(provider.GetRequiredService<IArchiveStore>());
    }

    [Fact]
    public async Task Local_scheduler_runs_the_orphan_scan_at_its_next_occurrence_and_not_before()
    {
        // Arrange: a real job on its own database; the clock stands at 10:07:30, the schedule is every 15 minutes
        await using var db = await JobsDatabase.CreateAsync();
        var ran = new TaskCompletionSource<JobRun>(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = new SignallingJob(new OrphanScanJob(db.Orders, new MaintenanceSettings(), db.Risk(), JobsDatabase.NoPublishedHeads, NullLogger<OrphanScanJob>.Instance), ran);
        var clock = new ManualClock(new DateTimeOffset(2030, 1, 1, 10, 7, 30, TimeSpan.Zero));
        var settings = Load(new() { ["ORPHAN_SCAN_SCHEDULE"] = "0 */15 * * * *" });
        using var scheduler = new MaintenanceScheduler([job], settings, clock, NullLogger<MaintenanceScheduler>.Instance);

        // Act
        await scheduler.StartAsync(CancellationToken.None);
        try
        {
            var firstWait = await clock.NextTimerAsync(Deadline);
            clock.Advance(firstWait - TimeSpan.FromSeconds(1));
            var early = ran.Task.IsCompleted;
            clock.Advance(TimeSpan.FromSeconds(1));
            var run = await ran.Task.WaitAsync(Deadline);
            var secondWait = await clock.NextTimerAsync(Deadline);

            // Assert: it waited exactly until 10:15:00, ran as the timer, and then waits for 10:30:00
            Assert.Equal(TimeSpan.FromSeconds(450), firstWait);
            Assert.False(early);
            Assert.Equal((JobRun.Succeeded, "timer"), (run.Status, run.Trigger));
            Assert.Equal(JobRun.Succeeded, (await db.RunAsync(run.RunId)).Status);
            Assert.Equal(TimeSpan.FromMinutes(15), secondWait);
        }
        finally
        {
            await scheduler.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Local_scheduler_fires_on_a_schedule_of_every_second_with_the_real_clock()
    {
        var ran = new TaskCompletionSource<JobRun>(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = new SignallingJob(new RecordingJob(JobNames.AuditRetention), ran);
        var settings = Load(new() { ["AUDIT_RETENTION_SCHEDULE"] = "*/1 * * * * *" });
        using var scheduler = new MaintenanceScheduler([job], settings, TimeProvider.System, NullLogger<MaintenanceScheduler>.Instance);

        await scheduler.StartAsync(CancellationToken.None);
        try
        {
            var run = await ran.Task.WaitAsync(Deadline);

            Assert.Equal((JobNames.AuditRetention, "timer"), (run.Job, run.Trigger));
        }
        finally
        {
            await scheduler.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Every_registered_job_can_record_its_runs()
    {
        // maintenance_runs.job takes any well-formed name, so registering a job needs no migration.
        await using var db = await JobsDatabase.CreateAsync();

        foreach (var job in JobNames.All)
        {
            var inserted = await db.AdminAsync(c => c.ExecuteAsync(
                "INSERT INTO trading.maintenance_runs (job, trigger, status, finished_at) VALUES (@Job, 'test', 'skipped', now())", new { Job = job }));
            Assert.Equal(1, inserted);
        }

        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => db.AdminAsync(c => c.ExecuteAsync(
            "INSERT INTO trading.maintenance_runs (job, trigger, status, finished_at) VALUES ('Not A Job!', 'test', 'skipped', now())")));
    }

    private static OrderFunctionsSettings Load(Dictionary<string, string?> values) => OrderFunctionsSettings.Load(Configuration(values));

    private static IConfiguration Configuration(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    /// <summary>Runs the job it wraps and reports its first run.</summary>
    private sealed class SignallingJob(IMaintenanceJob inner, TaskCompletionSource<JobRun> ran) : IMaintenanceJob
    {
        public string Name => inner.Name;

        public async Task<JobRun> RunAsync(string trigger, CancellationToken cancellationToken)
        {
            var run = await inner.RunAsync(trigger, cancellationToken);
            ran.TrySetResult(run);
            return run;
        }
    }

    /// <summary>A job that only records that it ran (the scheduler's timing is under test, not the job).</summary>
    private sealed class RecordingJob(string name) : IMaintenanceJob
    {
        public string Name => name;

        public Task<JobRun> RunAsync(string trigger, CancellationToken cancellationToken) =>
            Task.FromResult(new JobRun(0, name, trigger, JobRun.Succeeded, [], null, DateTime.UtcNow, DateTime.UtcNow));
    }
}
