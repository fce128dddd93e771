using System.Text.Json.Nodes;

namespace OrderFunctions.Core.Jobs;

/// <summary>A scheduled maintenance job; both hosts run it on its CRON schedule and admins on demand.</summary>
public interface IMaintenanceJob
{
    /// <summary>One of <see cref="JobNames"/>.</summary>
    string Name { get; }

    /// <summary>Runs once (or records a skipped run when another instance holds the job's lock).</summary>
    /// <param name="trigger">Who started it, e.g. <c>timer</c>, <c>timer (past due)</c> or <c>admin:&lt;sub&gt;</c>.</param>
    Task<JobRun> RunAsync(string trigger, CancellationToken cancellationToken);
}

/// <summary>The record of one run, as stored in maintenance_runs.</summary>
public sealed record JobRun(
    long RunId,
    string Job,
    string Trigger,
    string Status,
    JsonObject Findings,
    string? Error,
    DateTime StartedAt,
    DateTime? FinishedAt)
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Skipped = "skipped";
}
