using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;

namespace OrderFunctions.Infra.Tests;

/// <summary>
/// A maintenance job is one registration (MaintenanceJobs.All: name, schedule setting, default, class). Everything
/// else a job needs is checked against it, so a registered job without its timer, its setting in the sample settings
/// or its app setting in the template fails here, not in production.
/// </summary>
public sealed partial class MaintenanceJobRegistrationTests
{
    private static readonly string MaintenanceFunctions = Repo.Full("functions/OrderFunctions/MaintenanceFunctions.cs");

    public static TheoryData<string> RegisteredJobs() => [.. MaintenanceJobs.All.Select(j => j.Name)];

    [Theory]
    [MemberData(nameof(RegisteredJobs))]
    public void A_registered_job_has_one_Functions_timer_on_its_schedule_setting_that_runs_it(string job)
    {
        var registration = MaintenanceJobs.Named(job);

        var timer = Assert.Single(Timers(), t => t.Job == job);

        Assert.Equal(registration.ScheduleBinding, timer.Binding);
    }

    [Fact]
    public void Every_Functions_timer_runs_a_registered_job()
    {
        var timers = Timers();

        Assert.NotEmpty(timers);
        Assert.All(timers, t => Assert.Contains(t.Job, JobNames.All));
        Assert.DoesNotMatch(@"RunOnStartup\s*=\s*true", File.ReadAllText(MaintenanceFunctions));
    }

    [Theory]
    [MemberData(nameof(RegisteredJobs))]
    public void A_registered_job_has_its_schedule_setting_with_its_default_in_the_sample_settings(string job)
    {
        var registration = MaintenanceJobs.Named(job);
        var values = JsonNode.Parse(File.ReadAllText(Repo.SettingsSample))!["Values"]!.AsObject();

        Assert.True(values.ContainsKey(registration.ScheduleSetting), $"{registration.ScheduleSetting} is missing from local.settings.sample.json");
        Assert.Equal(registration.DefaultSchedule, (string?)values[registration.ScheduleSetting]);
        Assert.Contains(registration.ScheduleSetting, OrderFunctionsSettings.Keys);
    }

    [Theory]
    [MemberData(nameof(RegisteredJobs))]
    public async Task A_registered_job_has_its_schedule_setting_with_its_default_in_the_template(string job)
    {
        var registration = MaintenanceJobs.Named(job);
        var template = await CompiledTemplate.GetAsync();

        Assert.True(template.AppSettings().ContainsKey(registration.ScheduleSetting),
            $"infra/main.bicep does not set {registration.ScheduleSetting} on the function app");
        var parameter = template.Template["parameters"]!.AsObject()
            .SingleOrDefault(p => $"[parameters('{p.Key}')]" == Raw(template, registration.ScheduleSetting));
        Assert.True(parameter.Value is not null, $"{registration.ScheduleSetting} is not set from a template parameter");
        Assert.Equal(registration.DefaultSchedule, (string?)parameter.Value!["defaultValue"]);
    }

    [Fact]
    public async Task Each_registration_names_its_own_job_and_setting_and_both_hosts_resolve_exactly_the_registered_jobs()
    {
        var services = new ServiceCollection()
            .AddSingleton(typeof(ILogger<>), typeof(NullLogger<>))
            .AddOrderFunctions(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Database:ConnectionString"] = "Host=unused.invalid",
            }).Build());
        await using var provider = services.BuildServiceProvider();

        var jobs = provider.GetServices<IMaintenanceJob>().ToList();

        Assert.Equal(MaintenanceJobs.All.Select(j => (j.Name, j.JobType)), jobs.Select(j => (j.Name, j.GetType())));
        Assert.Equal(MaintenanceJobs.All.Count, MaintenanceJobs.All.Select(j => j.ScheduleSetting).Distinct().Count());
    }

    /// <summary>The timers of the Functions app: the job each runs and the binding its schedule constant spells.</summary>
    private static List<(string Job, string Binding)> Timers() =>
        TimerPattern().Matches(File.ReadAllText(MaintenanceFunctions))
            .Select(m => (Constant(typeof(JobNames), m.Groups["job"].Value), Constant(typeof(Schedules), m.Groups["schedule"].Value)))
            .ToList();

    private static string Constant(Type holder, string name) =>
        holder.GetField(name, BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as string
        ?? throw new InvalidOperationException($"{holder.Name}.{name} is not a constant");

    /// <summary>The app setting's value expression as the compiled template writes it.</summary>
    private static string Raw(CompiledTemplate template, string setting) => template.AppSettings()[setting];

    // [TimerTrigger(Schedules.X)] TimerInfo timer, ...) => RunAsync(JobNames.Y, ...
    [GeneratedRegex(@"\[TimerTrigger\(Schedules\.(?<schedule>\w+)\)\][^;]*?RunAsync\(JobNames\.(?<job>\w+),")]
    private static partial Regex TimerPattern();
}
