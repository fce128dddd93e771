using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using OrderFunctions.Testing.FunctionsHost;

namespace OrderFunctions.Testing.Tests;

/// <summary>The real worker (functions/OrderFunctions) under the test host, with a database that is not there.</summary>
public sealed class UnreachableDatabaseWorker : IAsyncLifetime
{
    public FunctionsWorkerHost Host { get; private set; } = null!;

    public static Dictionary<string, string> Settings(int databasePort) => new()
    {
        ["Database__ConnectionString"] = $"Host=127.0.0.1;Port={databasePort};Database=orders;Username=orders_app;Password=none;Timeout=2",
        ["Database__MaxRetries"] = "0",
        ["Auth__Issuer"] = "https://issuer.testing-tests.invalid/",
        ["Auth__Audience"] = "api://testing-tests",
        ["Auth__SigningKey"] = "testing-tests-hs256-signing-key-0123456789",
        ["ArchiveStorage__ConnectionString"] = "",
        [FunctionsWorkerHost.BodySizeLimitSetting] = "1048576",
        ["ORPHAN_SCAN_SCHEDULE"] = "0 */15 * * * *",
        ["AUDIT_RETENTION_SCHEDULE"] = "0 30 2 * * *",
        ["CHAIN_HEADS_SCHEDULE"] = "0 5 * * * *",
    };

    public async Task InitializeAsync() =>
        Host = await FunctionsWorkerHost.StartAsync(new FunctionsHostOptions { Settings = Settings(Commands.FreeLoopbackPort()) });

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

public sealed class FunctionsWorkerHostTests(UnreachableDatabaseWorker worker) : IClassFixture<UnreachableDatabaseWorker>
{
    [Fact]
    public void Worker_indexes_and_loads_every_function_of_the_app()
    {
        var names = worker.Host.Functions.Select(f => f.Name).ToList();

        Assert.Contains("ExecuteOrder", names);
        Assert.Contains("Health", names);
        Assert.Contains("OrphanScan", names);
        Assert.Contains("AuditRetention", names);
        Assert.All(worker.Host.Functions.Where(f => f.IsHttp), f => Assert.Equal("Anonymous", f.AuthLevel));
        Assert.True(worker.Host.StartupTime > TimeSpan.Zero);
    }

    [Fact]
    public async Task Http_invocation_round_trips_status_headers_and_body()
    {
        using var client = worker.Host.CreateClient();

        using var response = await client.GetAsync(new Uri("api/health", UriKind.Relative));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var body = JsonDocument.Parse(text);
        Assert.Equal("SERVICE_UNAVAILABLE", body.RootElement.GetProperty("error_code").GetString());
        Assert.Contains(worker.Host.Invocations, i => i.FunctionName == "Health" && i.Status == "Success");
    }

    [Fact]
    public async Task Request_without_a_route_a_function_takes_is_handed_to_the_catch_all_function()
    {
        using var client = worker.Host.CreateClient();

        using var response = await client.GetAsync(new Uri("api/no-such-route", UriKind.Relative));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains(worker.Host.Invocations, i => i.FunctionName == "Unmatched");
    }

    [Fact]
    public async Task Body_over_FUNCTIONS_REQUEST_BODY_SIZE_LIMIT_is_an_empty_500_and_never_reaches_the_worker()
    {
        using var client = worker.Host.CreateClient();
        var before = worker.Host.Invocations.Count;
        using var content = new ByteArrayContent(new byte[1_048_577]);
        content.Headers.ContentType = new("application/json");

        using var response = await client.PostAsync(new Uri("api/orders", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(before, worker.Host.Invocations.Count);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Timer_invocation_hands_IsPastDue_to_the_function(bool isPastDue)
    {
        var invocation = await worker.Host.InvokeTimerAsync("OrphanScan", isPastDue);

        Assert.Equal("OrphanScan", invocation.FunctionName);
        Assert.Contains(worker.Host.Log.Lines, line => line.Contains($"past due: {isPastDue}", StringComparison.Ordinal));
    }
}

public sealed class FunctionsWorkerHostLifecycleTests
{
    [Fact]
    public async Task Timer_fires_on_the_CRON_schedule_its_setting_names()
    {
        var settings = UnreachableDatabaseWorker.Settings(Commands.FreeLoopbackPort());
        settings["ORPHAN_SCAN_SCHEDULE"] = "*/1 * * * * *";
        await using var host = await FunctionsWorkerHost.StartAsync(new FunctionsHostOptions { Settings = settings, RunTimersOnSchedule = true });

        var fired = await host.WaitForInvocationAsync("OrphanScan", after: 0, TimeSpan.FromSeconds(30));

        Assert.Equal("OrphanScan", fired.FunctionName);
    }

    [Fact]
    public async Task Worker_that_dies_fails_the_request_and_the_health_check_loudly()
    {
        await using var host = await FunctionsWorkerHost.StartAsync(new FunctionsHostOptions
        {
            Settings = UnreachableDatabaseWorker.Settings(Commands.FreeLoopbackPort()),
            Output = _ => { },
        });
        using var client = host.CreateClient();
        using var worker = Process.GetProcessById(host.WorkerProcessId);
        worker.Kill();
        await worker.WaitForExitAsync();

        using var response = await client.GetAsync(new Uri("api/health", UriKind.Relative));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var failure = Assert.Throws<FunctionsHostException>(host.EnsureHealthy);
        Assert.Contains("exited unexpectedly", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Timer_whose_schedule_setting_is_unset_fails_the_start_as_in_the_Functions_host()
    {
        var settings = UnreachableDatabaseWorker.Settings(Commands.FreeLoopbackPort());
        settings["ORPHAN_SCAN_SCHEDULE"] = "";

        var failure = await Assert.ThrowsAsync<FunctionsHostException>(() =>
            FunctionsWorkerHost.StartAsync(new FunctionsHostOptions { Settings = settings, Output = _ => { } }));

        Assert.Contains("%ORPHAN_SCAN_SCHEDULE%", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_app_directory_fails_the_start_with_the_reason()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-functions-app-" + Guid.NewGuid().ToString("N"));

        var failure = await Assert.ThrowsAsync<FunctionsHostException>(() =>
            FunctionsWorkerHost.StartAsync(new FunctionsHostOptions { AppDirectory = missing }));

        Assert.Contains("worker.config.json", failure.Message, StringComparison.Ordinal);
    }
}

/// <summary>The host's route precedence, on function metadata alone.</summary>
public sealed class HttpFunctionRouterTests
{
    private static readonly HttpFunctionRouter Router = new(
    [
        Http("GetOrder", "api/orders/{id}", "GET"),
        Http("ListOrders", "api/orders", "GET"),
        Http("ExecuteOrder", "api/orders", "POST"),
        Http("Rollback", "api/orders/{id}/rollback", "POST"),
        Http("Me", "api/accounts/me", "GET"),
        Http("Account", "api/accounts/{id}", "GET"),
        Http("Unmatched", "{*path}", null),
    ], routePrefix: "");

    [Theory]
    [InlineData("GET", "/api/orders", "ListOrders")]
    [InlineData("POST", "/api/orders", "ExecuteOrder")]
    [InlineData("GET", "/api/orders/42", "GetOrder")]
    [InlineData("POST", "/api/orders/42/rollback", "Rollback")]
    [InlineData("GET", "/api/accounts/me", "Me")]
    [InlineData("GET", "/api/accounts/someone", "Account")]
    [InlineData("DELETE", "/api/orders", "Unmatched")]
    [InlineData("GET", "/api/orders/42/rollback", "Unmatched")]
    [InlineData("GET", "/", "Unmatched")]
    [InlineData("PATCH", "/anything/at/all", "Unmatched")]
    public void Literal_segments_win_over_parameters_and_a_wrong_method_falls_through_to_the_catch_all(string method, string path, string expected)
    {
        var match = Router.Match(method, new PathString(path));

        Assert.NotNull(match);
        Assert.Equal(expected, match.Value.Function.Name);
    }

    [Fact]
    public void Route_values_are_named_after_the_template_placeholders()
    {
        var match = Router.Match("POST", new PathString("/api/orders/4f0c8a52/rollback"));

        Assert.Equal("4f0c8a52", match!.Value.Values["id"]);
    }

    [Fact]
    public void No_match_without_a_catch_all_is_null_the_host_answers_404()
    {
        var router = new HttpFunctionRouter([Http("ListOrders", "api/orders", "GET")], routePrefix: "");

        Assert.Null(router.Match("POST", new PathString("/api/orders")));
        Assert.Null(router.Match("GET", new PathString("/api/other")));
    }

    [Fact]
    public void Route_prefix_from_host_json_comes_before_every_route()
    {
        var router = new HttpFunctionRouter([Http("ListOrders", "orders", "GET")], routePrefix: "api");

        Assert.NotNull(router.Match("GET", new PathString("/api/orders")));
        Assert.Null(router.Match("GET", new PathString("/orders")));
    }

    private static LoadedFunction Http(string name, string route, string? method)
    {
        var binding = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["name"] = "req", ["type"] = "httpTrigger", ["direction"] = "In", ["authLevel"] = "Anonymous", ["route"] = route,
            ["methods"] = method is null ? null : new[] { method.ToLowerInvariant() },
        }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value));
        return LoadedFunction.FromMetadata(name, Guid.NewGuid().ToString(), "App." + name, [binding]);
    }
}
