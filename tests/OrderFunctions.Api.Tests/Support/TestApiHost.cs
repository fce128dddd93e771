using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrderFunctions.Core;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Testing.FunctionsHost;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>One running host of the API for a test class: LocalHost or the Functions worker, on the same settings.</summary>
public abstract class TestApiHost : IAsyncDisposable
{
    public abstract ApiHost Kind { get; }

    /// <summary>A client whose base address is the host's.</summary>
    public abstract HttpClient CreateClient();

    /// <summary>"METHOD /route" of every API operation the host serves, with the name it serves it under.</summary>
    public abstract IReadOnlyDictionary<string, string?> ServedOperations();

    /// <summary>What a test failure should show about the host (the worker's log), or empty.</summary>
    public virtual string Diagnostics() => "";

    public abstract ValueTask DisposeAsync();

    /// <summary>Starts the host of this run (<see cref="ApiHosts.Current"/>) on a database, with extra settings.</summary>
    public static async Task<TestApiHost> StartAsync(string connectionString, IReadOnlyDictionary<string, string>? overrides = null) =>
        ApiHosts.Current == ApiHost.Functions
            ? await FunctionsApiHost.StartWorkerAsync(connectionString, overrides)
            : new LocalApiHost(new LocalHostFactory(connectionString, overrides));

    /// <summary>
    /// Every setting the application reads, given explicitly (a developer's local.settings.json or environment can
    /// change nothing under the tests): the database, the test signing key, the rest empty (their defaults).
    /// </summary>
    public static Dictionary<string, string> Settings(string connectionString, IReadOnlyDictionary<string, string>? overrides)
    {
        var settings = OrderFunctionsSettings.Keys.ToDictionary(key => key, _ => "", StringComparer.Ordinal);
        settings["Database__ConnectionString"] = connectionString;
        settings["Database__UseEntraAuthentication"] = "false";
        settings["Auth__Issuer"] = LocalHostFactory.Auth.Issuer;
        settings["Auth__Audience"] = LocalHostFactory.Auth.Audience;
        settings["Auth__SigningKey"] = LocalHostFactory.Auth.SigningKey;
        settings["Auth__Authority"] = "";
        foreach (var (key, value) in overrides ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }

        return settings;
    }
}

public sealed class LocalApiHost(LocalHostFactory factory) : TestApiHost
{
    public LocalHostFactory Factory { get; } = factory;

    public override ApiHost Kind => ApiHost.Local;

    public override HttpClient CreateClient() => Factory.CreateClient();

    public override IReadOnlyDictionary<string, string?> ServedOperations()
    {
        var operations = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var source in Factory.Services.GetServices<EndpointDataSource>())
        {
            foreach (var endpoint in source.Endpoints.OfType<RouteEndpoint>())
            {
                foreach (var method in endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? [])
                {
                    operations[$"{method} /{endpoint.RoutePattern.RawText!.TrimStart('/')}"] = endpoint.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName;
                }
            }
        }

        return operations;
    }

    public override ValueTask DisposeAsync() => Factory.DisposeAsync();
}

public sealed class FunctionsApiHost : TestApiHost
{
    private FunctionsApiHost(FunctionsWorkerHost worker) => Worker = worker;

    public FunctionsWorkerHost Worker { get; }

    public override ApiHost Kind => ApiHost.Functions;

    public static async Task<FunctionsApiHost> StartWorkerAsync(string connectionString, IReadOnlyDictionary<string, string>? overrides)
    {
        var settings = Settings(connectionString, overrides);
        // The Functions host resolves %SETTING% schedules itself and refuses empty ones; Core's defaults, as LocalHost uses.
        foreach (var (setting, schedule) in MaintenanceJobs.All.Select(j => (j.ScheduleSetting, j.DefaultSchedule)))
        {
            if (settings[setting].Length == 0)
            {
                settings[setting] = schedule;
            }
        }

        settings.TryAdd(FunctionsWorkerHost.BodySizeLimitSetting, ApiHosts.RequestBodySizeLimit);
        settings.TryAdd("Logging__LogLevel__Default", "Warning");
        settings.TryAdd("Logging__LogLevel__OrderFunctions.Core.Api.OrderApi", "Critical");
        // Timers run on demand in the API tests, never on their schedule (no test may race a scheduled run).
        return new FunctionsApiHost(await FunctionsWorkerHost.StartAsync(new FunctionsHostOptions { Settings = settings }));
    }

    public override HttpClient CreateClient() => Worker.CreateClient();

    public override IReadOnlyDictionary<string, string?> ServedOperations()
    {
        var operations = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var function in Worker.Functions.Where(f => f.IsHttp && f.Route != Routes.CatchAll))
        {
            foreach (var method in function.HttpMethods ?? [])
            {
                operations[$"{method} /{function.Route}"] = function.Name;
            }
        }

        return operations;
    }

    public override string Diagnostics() => "functions worker log:\n" + Worker.Log.Tail();

    public override async ValueTask DisposeAsync()
    {
        try
        {
            // A crash or a failed invocation during the class fails it, with the worker's log.
            Worker.EnsureHealthy();
        }
        finally
        {
            await Worker.DisposeAsync();
        }
    }
}
