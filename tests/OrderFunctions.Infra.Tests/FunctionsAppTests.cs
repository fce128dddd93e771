using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;

namespace OrderFunctions.Infra.Tests;

/// <summary>
/// The Functions worker app cannot be compiled on these machines (its packages are not served here), so its
/// sources are checked as text against Core: every endpoint has exactly one trigger with the same method and
/// route constant and the host can register every route (the timers: MaintenanceJobRegistrationTests).
/// </summary>
public sealed partial class FunctionsAppTests
{
    private static readonly string FunctionsDir = Repo.Full("functions/OrderFunctions");

    private static string Sources => string.Join("\n", Directory.EnumerateFiles(FunctionsDir, "*.cs").Order(StringComparer.Ordinal).Select(File.ReadAllText));

    public static TheoryData<string> EndpointNamesData()
    {
        var data = new TheoryData<string>();
        foreach (var field in typeof(EndpointNames).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            data.Add((string)field.GetValue(null)!);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(EndpointNamesData))]
    public void Every_endpoint_has_one_trigger_with_its_method_and_route_constant(string endpoint)
    {
        var api = BuildApi().Endpoint(endpoint);
        var triggers = TriggerPattern().Matches(Sources).Where(m => m.Groups["name"].Value == endpoint).ToList();

        var trigger = Assert.Single(triggers);
        Assert.Equal(api.Method, trigger.Groups["method"].Value, ignoreCase: true);
        Assert.Equal(api.Route, RouteConstant(trigger.Groups["route"].Value));
        Assert.Contains($"HandleAsync(EndpointNames.{endpoint},", trigger.Groups["body"].Value, StringComparison.Ordinal);
        // Route placeholders are bound by name to trigger parameters and handed to Core by that name.
        foreach (Match placeholder in PlaceholderPattern().Matches(api.Route))
        {
            var name = placeholder.Groups[1].Value;
            Assert.Contains($"string {name},", trigger.Groups["body"].Value, StringComparison.Ordinal);
            Assert.Contains($"(nameof({name}), {name})", trigger.Groups["body"].Value, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_trigger_is_anonymous_and_takes_a_cancellation_token()
    {
        var triggers = TriggerPattern().Matches(Sources);

        Assert.Equal(EndpointNamesData().Count, triggers.Count);
        Assert.All(triggers, t => Assert.Contains("CancellationToken cancellationToken", t.Groups["body"].Value, StringComparison.Ordinal));
        Assert.DoesNotMatch(@"AuthorizationLevel\.(Function|Admin|System|User)", Sources);
    }

    [Fact]
    public void No_route_begins_with_a_prefix_the_Functions_host_reserves_and_the_route_prefix_is_empty()
    {
        var routes = typeof(Routes).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetValue(null)!).ToList();
        using var host = JsonDocument.Parse(File.ReadAllText(Repo.Full("host.json")));

        // The host refuses function routes starting with "admin" or "runtime" (its own APIs live there).
        Assert.All(routes, r => Assert.False(
            r.StartsWith("admin", StringComparison.OrdinalIgnoreCase) || r.StartsWith("runtime", StringComparison.OrdinalIgnoreCase) || r.StartsWith('/'), r));
        Assert.All(routes, r => Assert.StartsWith("api/", r, StringComparison.Ordinal));
        Assert.Equal("", host.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());
    }

    [Fact]
    public void Log_calls_in_the_Functions_app_use_message_templates_not_interpolation()
    {
        // CA2254 would catch this, but the project is not compiled here.
        Assert.DoesNotMatch(@"Log\w*\([^;]*\$""", Sources);
    }

    [Fact]
    public void Nothing_that_builds_here_references_the_Functions_app()
    {
        var referencing = Directory.EnumerateFiles(Repo.Root, "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}node_modules{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(p => Path.GetFileName(p) != "OrderFunctions.csproj" && ReferencesWorker(p))
            .Select(Repo.Relative)
            .ToList();
        var localFilter = File.ReadAllText(Repo.Full("OrderFunctions.Local.slnf"));
        var solution = File.ReadAllText(Repo.Full("OrderFunctions.sln"));

        Assert.Empty(referencing);
        Assert.DoesNotContain("functions/OrderFunctions/OrderFunctions.csproj", localFilter, StringComparison.Ordinal);
        Assert.Contains("OrderFunctions.csproj", solution.Replace('\\', '/'), StringComparison.Ordinal);
    }

    private static bool ReferencesWorker(string csproj) =>
        Regex.IsMatch(File.ReadAllText(csproj), @"Include=""[^""]*[/\\]OrderFunctions[/\\]OrderFunctions\.csproj""");

    private static string RouteConstant(string name) =>
        (string)typeof(Routes).GetField(name, BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;

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

    // [Function(EndpointNames.X)] ... [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = Routes.Y)] ... up to the next [Function
    [GeneratedRegex(@"\[Function\(EndpointNames\.(?<name>\w+)\)\](?<body>\s*public[^\[]*\[HttpTrigger\(AuthorizationLevel\.Anonymous,\s*""(?<method>\w+)"",\s*Route\s*=\s*Routes\.(?<route>\w+)\)\][^\[]*)")]
    private static partial Regex TriggerPattern();

    [GeneratedRegex(@"\{(\w+)\}")]
    private static partial Regex PlaceholderPattern();
}
