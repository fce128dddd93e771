using Cronos;
using OrderFunctions.Core;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;

namespace OrderFunctions.LocalHost;

/// <summary>
/// Runs each maintenance job on the CRON schedule of the same setting the Functions timer triggers read (the job's
/// registration in MaintenanceJobs names it; six fields, seconds first, UTC).
/// </summary>
public sealed partial class MaintenanceScheduler(IEnumerable<IMaintenanceJob> jobs, OrderFunctionsSettings settings,
    TimeProvider clock, ILogger<MaintenanceScheduler> logger) : BackgroundService
{
    private static readonly TimeSpan MaxWait = TimeSpan.FromDays(1);

    /// <summary>The jobs it runs, each on its own schedule.</summary>
    public IReadOnlyList<IMaintenanceJob> Jobs { get; } = [.. jobs];

    public static CronExpression Parse(string expression) => CronExpression.Parse(expression, CronFormat.IncludeSeconds);

    public string ScheduleOf(string job) => settings.ScheduleOf(job);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Jobs.Select(job => RunOnScheduleAsync(job, Parse(ScheduleOf(job.Name)), stoppingToken)));

    private async Task RunOnScheduleAsync(IMaintenanceJob job, CronExpression schedule, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var now = clock.GetUtcNow();
            var next = schedule.GetNextOccurrence(now.UtcDateTime, TimeZoneInfo.Utc);
            if (next is null)
            {
                LogNoOccurrence(job.Name);
                return;
            }

            LogNext(job.Name, next.Value);
            try
            {
                // Task.Delay takes at most about 49 days: wait in steps of a day until the occurrence.
                for (var wait = next.Value - now.UtcDateTime; wait > TimeSpan.Zero; wait = next.Value - clock.GetUtcNow().UtcDateTime)
                {
                    await Task.Delay(wait < MaxWait ? wait : MaxWait, clock, stoppingToken);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var late = clock.GetUtcNow().UtcDateTime - next.Value > TimeSpan.FromMinutes(1);
            try
            {
                var run = await job.RunAsync(late ? "timer (past due)" : "timer", stoppingToken);
                LogRun(job.Name, run.RunId, run.Status);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A failing run must not stop the schedule: the next occurrence tries again.
                LogFailed(e, job.Name);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance job {Job} next runs at {NextRun:o}")]
    private partial void LogNext(string job, DateTime nextRun);

    [LoggerMessage(Level = LogLevel.Information, Message = "Maintenance job {Job} run {RunId} {Status}")]
    private partial void LogRun(string job, long runId, string status);

    [LoggerMessage(Level = LogLevel.Error, Message = "Maintenance job {Job} failed")]
    private partial void LogFailed(Exception exception, string job);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Maintenance job {Job} has no next occurrence; it will not run")]
    private partial void LogNoOccurrence(string job);
}
