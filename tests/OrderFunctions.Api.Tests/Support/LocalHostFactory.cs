using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrderFunctions.Core.Configuration;
using OrderFunctions.LocalHost;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>
/// LocalHost on a test server. Every setting the application reads is given explicitly (<see cref="TestApiHost.Settings"/>),
/// so a developer's local.settings.json (which LocalHost loads beneath these) can change nothing under the tests.
/// </summary>
public sealed class LocalHostFactory(string connectionString, IReadOnlyDictionary<string, string>? overrides = null)
    : WebApplicationFactory<Program>
{
    public static AuthSettings Auth { get; } = new()
    {
        Issuer = "https://issuer.api-tests.invalid/",
        Audience = "api://orderfunctions-api-tests",
        SigningKey = "api-tests-hs256-signing-key-0123456789abcdef",
        Authority = "",
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        var settings = TestApiHost.Settings(connectionString, overrides);

        // UseSetting reaches the builder's configuration before Program reads it (host configuration is
        // handed to the entry point); later sources such as ConfigureAppConfiguration would come too late.
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key.Replace("__", ":", StringComparison.Ordinal), value);
        }

        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        builder.UseSetting("Logging:LogLevel:OrderFunctions.Core.Api.OrderApi", "Critical");
        builder.UseEnvironment("Testing");
        builder.ConfigureTestServices(services =>
        {
            // Timer jobs run on their schedules in LocalHost; API tests must not race a scheduled run.
            var scheduler = services.Where(s => s.ServiceType == typeof(IHostedService) && s.ImplementationType == typeof(MaintenanceScheduler)).ToList();
            foreach (var descriptor in scheduler)
            {
                services.Remove(descriptor);
            }
        });
    }
}
