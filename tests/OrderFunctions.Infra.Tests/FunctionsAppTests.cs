using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Jobs;

namespace OrderFunctions.Infra.Tests;

/// <summary>
/// The functions.metadata the Functions SDK generates when it builds functions/OrderFunctions (what the host indexes
/// and deploys) against Core's route table, which LocalHost maps one endpoint per entry: the same names, methods,
/// routes and authorization on both hosts, one catch-all, and the timers on their schedule settings.
/// </summary>
public sealed class FunctionsAppTests
{
    private static readonly Lazy<IReadOnlyList<Function>> Metadata = new(Load);

    public static TheoryData<string> EndpointNamesData()
    {
        var data = new TheoryData<string>();
        foreach (var endpoint in BuildApi().Endpoints)
        {
            data.Add(endpoint.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(EndpointNamesData))]
    public void Every_endpoint_is_one_anonymous_http_function_with_its_method_and_route(string endpoint)
    {
        var api = BuildApi().Endpoint(endpoint);

        var function = Assert.Single(Metadata.Value, f => f.Name == endpoint);

        var trigger = function.Trigger;
        Assert.Equal("httpTrigger", trigger.Type);
        Assert.Equal("Anonymous", trigger.AuthLevel);
        Assert.Equal([api.Method.ToLowerInvariant()], trigger.Methods);
        Assert.Equal(api.Route, trigger.Route);
        Assert.Contains(function.Bindings, b => b.Type == "http" && b.Direction == "Out" && b.Name == "$return");
    }

    [Fact]
    public void The_only_other_http_function_is_the_catch_all_for_every_method()
    {
        var endpoints = BuildApi().Endpoints.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);

        var others = Metadata.Value.Where(f => f.Trigger.Type == "httpTrigger" && !endpoints.Contains(f.Name)).ToList();

        var catchAll = Assert.Single(others);
        Assert.Equal("Unmatched", catchAll.Name);
        Assert.Equal(Routes.CatchAll, catchAll.Trigger.Route);
        Assert.Null(catchAll.Trigger.Methods);
        Assert.Equal("Anonymous", catchAll.Trigger.AuthLevel);
    }

    [Fact]
    public void The_timers_are_the_registered_jobs_on_their_schedule_settings_and_never_run_on_startup()
    {
        // One timer per registered job (MaintenanceJobs), none more; which job each runs: MaintenanceJobRegistrationTests.
        var timers = Metadata.Value.Where(f => f.Trigger.Type == "timerTrigger").ToList();

        Assert.Equal(MaintenanceJobs.All.Select(j => j.ScheduleBinding).Order(StringComparer.Ordinal),
            timers.Select(t => t.Trigger.Schedule).Order(StringComparer.Ordinal));
        Assert.All(timers, t => Assert.False(t.Trigger.RunOnStartup));
    }

    [Fact]
    public void The_app_has_no_function_but_the_endpoints_the_catch_all_and_the_timers()
    {
        Assert.Equal(BuildApi().Endpoints.Count + 1 + JobNames.All.Count, Metadata.Value.Count);
        Assert.All(Metadata.Value, f => Assert.Equal("dotnet-isolated", f.Language));
    }

    [Fact]
    public void No_route_begins_with_a_prefix_the_Functions_host_reserves_and_the_route_prefix_is_empty()
    {
        var routes = Metadata.Value.Select(f => f.Trigger.Route).OfType<string>().ToList();
        using var host = JsonDocument.Parse(File.ReadAllText(Repo.Full("host.json")));

        // The host refuses function routes starting with "admin" or "runtime" (its own APIs live there).
        Assert.NotEmpty(routes);
        Assert.All(routes, r => Assert.False(
            r.StartsWith("admin", StringComparison.OrdinalIgnoreCase) || r.StartsWith("runtime", StringComparison.OrdinalIgnoreCase) || r.StartsWith('/'), r));
        Assert.All(routes.Where(r => r != Routes.CatchAll), r => Assert.StartsWith("api/", r, StringComparison.Ordinal));
        Assert.Equal("", host.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());
    }

    [Fact]
    public void The_solution_builds_the_Functions_app_and_no_solution_filter_leaves_it_out()
    {
        var solution = File.ReadAllText(Repo.Full("OrderFunctions.sln")).Replace('\\', '/');

        Assert.Contains("functions/OrderFunctions/OrderFunctions.csproj", solution, StringComparison.Ordinal);
        Assert.DoesNotContain(Directory.EnumerateFiles(Repo.Root, "*.slnf"),
            filter => !File.ReadAllText(filter).Replace('\\', '/').Contains("functions/OrderFunctions/OrderFunctions.csproj", StringComparison.Ordinal));
    }

    private static OrderApi BuildApi()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:ConnectionString"] = "Host=unused.invalid",
            ["Auth:Issuer"] = "i",
            ["Auth:Audience"] = "a",
            ["Auth:SigningKey"] = new string('k', 32),
        }).Build();
        var services = new ServiceCollection()
            .AddSingleton(typeof(ILogger<>), typeof(NullLogger<>))
            .AddOrderFunctions(configuration);
        return services.BuildServiceProvider().GetRequiredService<OrderApi>();
    }

    private static IReadOnlyList<Function> Load()
    {
        var path = typeof(FunctionsAppTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "FunctionsMetadataPath").Value!;
        Assert.True(File.Exists(path), $"{path} is missing: build functions/OrderFunctions (the test project does so first)");
        return JsonSerializer.Deserialize<List<Function>>(File.ReadAllText(path), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
    }

    private sealed record Function(string Name, string Language, string EntryPoint, List<Binding> Bindings)
    {
        public Binding Trigger => Bindings.Single(b => b.Type.EndsWith("Trigger", StringComparison.Ordinal));
    }

    private sealed record Binding(string Name, string Type, string Direction, string? AuthLevel, List<string>? Methods, string? Route,
        string? Schedule, bool RunOnStartup);
}
