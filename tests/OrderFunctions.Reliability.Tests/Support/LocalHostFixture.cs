using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Testing;

namespace OrderFunctions.Reliability.Tests.Support;

/// <summary>
/// A database of its own and LocalHost serving it in memory (WebApplicationFactory over the real Program),
/// configured the way app settings configure it, with tokens signed by the same local key.
/// </summary>
public class LocalHostFixture : DatabaseFixture
{
    // Far enough never to fire during a test run, near enough for Task.Delay (at most ~49 days away).
    private const string MonthlySchedule = "0 0 0 1 * *";

    public AuthSettings Auth { get; } = new()
    {
        Issuer = "orderfunctions-reliability-tests",
        Audience = "orderfunctions-api",
        SigningKey = "reliability-tests-signing-key-0123456789-abcdef",
        Authority = "",
    };

    public WebApplicationFactory<Program> Factory { get; private set; } = null!;

    public CapturedLogs Logs { get; } = new();

    /// <summary>The connection string LocalHost is given; a derived fixture may route it (e.g. through PgBouncer).</summary>
    protected virtual string HostConnectionString => AppConnectionString;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Factory = CreateFactory();

        // Fail here, not in a test, when the host cannot start against this database.
        var settings = Factory.Services.GetService(typeof(OrderFunctionsSettings)) as OrderFunctionsSettings
            ?? throw new InvalidOperationException("LocalHost did not register its settings");
        if (settings.Database.ConnectionString != HostConnectionString)
        {
            throw new InvalidOperationException("LocalHost does not use the test database: UseSetting did not reach its configuration");
        }
    }

    /// <summary>LocalHost over this fixture's database, configured as app settings configure it.</summary>
    public WebApplicationFactory<Program> CreateFactory() => new WebApplicationFactory<Program>().WithWebHostBuilder(host =>
    {
        host.UseSetting("Database:ConnectionString", HostConnectionString);
        host.UseSetting("Database:MaxRetries", "3");
        host.UseSetting("Auth:Issuer", Auth.Issuer);
        host.UseSetting("Auth:Audience", Auth.Audience);
        host.UseSetting("Auth:SigningKey", Auth.SigningKey);
        host.UseSetting("Auth:Authority", "");
        foreach (var job in MaintenanceJobs.All)
        {
            host.UseSetting(job.ScheduleSetting, MonthlySchedule);
        }

        // Warnings and errors are kept in memory for the tests to explain themselves, never written to the console.
        host.ConfigureLogging(logging => logging.ClearProviders().SetMinimumLevel(LogLevel.Warning).AddProvider(Logs));
    });

    public override async Task DisposeAsync()
    {
        if (Factory is not null)
        {
            await Factory.DisposeAsync();
        }

        await base.DisposeAsync();
    }

    public string Token(Guid userId, bool admin = false) => DevTokens.Create(Auth, userId, admin);
}
