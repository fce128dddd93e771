using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core;
using OrderFunctions.Core.Jobs;

namespace OrderFunctions;

// Schedules are %SETTING% binding expressions the host resolves from app settings, the same settings LocalHost's
// scheduler reads. No RunOnStartup: every scale-out instance would run the jobs at start. Each job takes an advisory
// lock, so instances firing together do the work once.
public sealed class MaintenanceFunctions(IEnumerable<IMaintenanceJob> jobs, ILogger<MaintenanceFunctions> logger)
{
    [Function(nameof(OrphanScan))]
    public Task OrphanScan([TimerTrigger(Schedules.OrphanScan)] TimerInfo timer, CancellationToken cancellationToken) =>
        RunAsync(JobNames.OrphanScan, timer, cancellationToken);

    [Function(nameof(AuditRetention))]
    public Task AuditRetention([TimerTrigger(Schedules.AuditRetention)] TimerInfo timer, CancellationToken cancellationToken) =>
        RunAsync(JobNames.AuditRetention, timer, cancellationToken);

    [Function(nameof(ChainHeads))]
    public Task ChainHeads([TimerTrigger(Schedules.ChainHeads)] TimerInfo timer, CancellationToken cancellationToken) =>
        RunAsync(JobNames.ChainHeads, timer, cancellationToken);

    private async Task RunAsync(string jobName, TimerInfo timer, CancellationToken cancellationToken)
    {
        var job = jobs.FirstOrDefault(j => string.Equals(j.Name, jobName, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"no maintenance job named {jobName} is registered");

        logger.LogInformation("Maintenance job {Job} triggered by its timer, past due: {IsPastDue}", jobName, timer.IsPastDue);
        var run = await job.RunAsync(timer.IsPastDue ? "timer (past due)" : "timer", cancellationToken);

        if (run.Status == JobRun.Failed)
        {
            logger.LogError("Maintenance job {Job} run {RunId} failed: {Error}", jobName, run.RunId, run.Error);
        }
        else
        {
            logger.LogInformation("Maintenance job {Job} run {RunId} {Status}", jobName, run.RunId, run.Status);
        }
    }
}
