using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.LocalHost;

namespace OrderFunctions.Bench;

/// <summary>The real LocalHost (same code as `scripts/run.sh` serves) on Kestrel, on a free loopback port.</summary>
public sealed class LocalServer : IAsyncDisposable
{
    public const string Issuer = "orderfunctions-bench";
    public const string Audience = "orderfunctions-api";
    public const string SigningKey = "benchmark-signing-key-not-a-secret-0123456789";

    private readonly WebApplication _app;

    private LocalServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public static AuthSettings Auth { get; } = new() { Issuer = Issuer, Audience = Audience, SigningKey = SigningKey, Authority = "" };

    public static async Task<LocalServer> StartAsync(string appConnectionString, int closeBatchSize, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string?>? settings = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:ConnectionString"] = appConnectionString,
            ["Auth:Issuer"] = Issuer,
            ["Auth:Audience"] = Audience,
            ["Auth:SigningKey"] = SigningKey,
            ["Auth:Authority"] = "",
            ["Risk:CloseBatchSize"] = closeBatchSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        // Keep the timer jobs out of the measurement window.
        builder.Configuration.AddInMemoryCollection(MaintenanceJobs.All.ToDictionary(j => j.ScheduleSetting.Replace("__", ":", StringComparison.Ordinal),
            _ => (string?)"0 0 0 1 1 *"));
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.AddOrderFunctionsLocalHost();

        var app = builder.Build();
        app.MapOrderFunctions();
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new LocalServer(app, new Uri(address));
    }

    public static string Token(Guid userId) => DevTokens.Create(Auth, userId, admin: false, lifetime: TimeSpan.FromHours(4));

    /// <summary>An orders.admin token, for the price feed of the price-tick scenario.</summary>
    public static string AdminToken() => DevTokens.Create(Auth, Guid.Parse("0a0a0a0a-0000-4000-8000-0000000be4c1"), admin: true, lifetime: TimeSpan.FromHours(4));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
