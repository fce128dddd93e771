namespace OrderFunctions.Core.Jobs;

/// <summary>
/// One maintenance job: its name (the admin route's <c>{job}</c>, run records, logs), the app setting that holds its
/// CRON schedule (NCRONTAB, six fields, seconds first, UTC), that schedule's default, and the class that runs it.
/// </summary>
public sealed record MaintenanceJobRegistration(string Name, string ScheduleSetting, string DefaultSchedule, Type JobType)
{
    /// <summary>The Functions binding expression of the schedule: <c>%SETTING%</c>, resolved from app settings by the host.</summary>
    public string ScheduleBinding => "%" + ScheduleSetting + "%";
}

/// <summary>
/// Every maintenance job, registered once. The settings (<see cref="Configuration.OrderFunctionsSettings"/>), the
/// dependency injection of both hosts, LocalHost's scheduler and the admin route all read <see cref="All"/>. The
/// Functions timer attribute needs compile-time constants, so a job also has one timer in
/// functions/OrderFunctions/MaintenanceFunctions.cs built from the constants below. Adding a job: its class, its
/// constants and its line in <see cref="All"/>, that timer, and its schedule setting in local.settings.sample.json
/// and infra/main.bicep; tests/OrderFunctions.Infra.Tests fails until every one of them is there.
/// </summary>
public static class MaintenanceJobs
{
    public static IReadOnlyList<MaintenanceJobRegistration> All { get; } =
    [
        new(JobNames.OrphanScan, Schedules.OrphanScanSetting, Schedules.OrphanScanDefault, typeof(OrphanScanJob)),
        new(JobNames.AuditRetention, Schedules.AuditRetentionSetting, Schedules.AuditRetentionDefault, typeof(AuditRetentionJob)),
        new(JobNames.ChainHeads, Schedules.ChainHeadsSetting, Schedules.ChainHeadsDefault, typeof(ChainHeadsJob)),
    ];

    public static MaintenanceJobRegistration Named(string name) =>
        All.FirstOrDefault(j => string.Equals(j.Name, name, StringComparison.Ordinal))
        ?? throw new ArgumentOutOfRangeException(nameof(name), name, "no maintenance job has this name");
}

/// <summary>The jobs' names.</summary>
public static class JobNames
{
    public const string OrphanScan = "orphan-scan";
    public const string AuditRetention = "audit-retention";
    public const string ChainHeads = "chain-heads";

    public static IReadOnlyList<string> All { get; } = [.. MaintenanceJobs.All.Select(j => j.Name)];
}

/// <summary>The settings that hold the jobs' schedules, their Functions binding expressions and their defaults.</summary>
public static class Schedules
{
    public const string OrphanScanSetting = "ORPHAN_SCAN_SCHEDULE";
    public const string OrphanScan = "%" + OrphanScanSetting + "%";
    public const string OrphanScanDefault = "0 */15 * * * *";

    public const string AuditRetentionSetting = "AUDIT_RETENTION_SCHEDULE";
    public const string AuditRetention = "%" + AuditRetentionSetting + "%";
    public const string AuditRetentionDefault = "0 30 2 * * *";

    public const string ChainHeadsSetting = "CHAIN_HEADS_SCHEDULE";
    public const string ChainHeads = "%" + ChainHeadsSetting + "%";

    /// <summary>Hourly: what an owner could rewrite undetected is at most the hour since the last publication.</summary>
    public const string ChainHeadsDefault = "0 5 * * * *";
}
