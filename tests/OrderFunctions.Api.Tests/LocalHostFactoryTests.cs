using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.LocalHost;

namespace OrderFunctions.Api.Tests;

/// <summary>The host under test runs on the settings the tests give it, whatever local.settings.json a developer has.</summary>
public sealed class LocalHostFactoryTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [HostFact(ApiHost.Local, "reads LocalHost's own service container; the worker runs in another process, on an environment of exactly these settings")]
    public void Test_host_reads_only_the_settings_the_tests_give_it()
    {
        var settings = api.Factory.Services.GetRequiredService<OrderFunctionsSettings>();

        Assert.Equal(api.AppConnectionString, settings.Database.ConnectionString);
        Assert.False(settings.Database.UseEntraAuthentication);
        Assert.Equal(LocalHostFactory.Auth, settings.Auth);
        Assert.Equal("", settings.ArchiveStorage.ConnectionString);
        Assert.All(MaintenanceJobs.All, job => Assert.Equal(job.DefaultSchedule, settings.ScheduleOf(job.Name)));
    }
}
