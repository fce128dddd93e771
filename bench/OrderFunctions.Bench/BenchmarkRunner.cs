using System.Globalization;
using System.Runtime.InteropServices;
using Npgsql;

namespace OrderFunctions.Bench;

/// <summary>
/// One benchmark run: fresh databases, the LocalHost on Kestrel, the HTTP scenarios, then pgbench's direct
/// execute_order and tpcb-like phases against the same server, then the report.
/// </summary>
public static class BenchmarkRunner
{
    public static async Task<(BenchReport Report, string JsonPath, string SvgPath)> RunAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        var startedAt = DateTime.UtcNow;
        var database = new BenchDatabase(options);
        Console.Error.WriteLine($"bench: creating {options.DatabaseName} ({options.Traders} traders, {options.Symbols} instruments) and {options.DatabaseName}_tpcb");
        await database.CreateAsync(cancellationToken);
        var postgresVersion = await ServerVersionAsync(database.OrdersConnectionString, cancellationToken);

        using var roundTrips = new RoundTripCounter();
        var scenarios = new List<ScenarioResult>();
        await using (var server = await LocalServer.StartAsync(database.AppConnectionString, cancellationToken))
        {
            Console.Error.WriteLine($"bench: LocalHost on {server.Address}");
            var load = new LoadGenerator(server.Address, options, roundTrips);
            foreach (var scenario in options.Scenarios)
            {
                Console.Error.WriteLine($"bench: HTTP {scenario}, {options.Clients} clients, {options.Warmup.TotalSeconds:F0} s warm-up + {options.Duration.TotalSeconds:F0} s");
                scenarios.Add(await load.RunAsync(scenario, cancellationToken));
            }
        }

        var pgbench = new PgBench(options);
        Console.Error.WriteLine("bench: pgbench execute_order (direct)");
        var direct = await pgbench.ExecuteOrderAsync(BenchDatabase.LibpqUrl(database.OrdersConnectionString), cancellationToken);
        Console.Error.WriteLine("bench: pgbench tpcb-like");
        var tpcb = await pgbench.TpcbAsync(BenchDatabase.LibpqUrl(database.TpcbConnectionString), cancellationToken);

        var distinct = scenarios.FirstOrDefault(s => s.Scenario == Scenario.Distinct) ?? scenarios[0];
        var stackRatio = distinct.OrdersPerSecond / direct.Tps;
        var databaseRatio = direct.Tps / tpcb.Tps;
        var c = CultureInfo.InvariantCulture;
        var orderScenarios = scenarios.Where(s => s.Scenario != Scenario.Mixed).ToList();
        var targets = new List<TargetCheck>
        {
            new("stack ratio >= 0.8", stackRatio.ToString("F3", c), stackRatio >= 0.8),
            new("database ratio >= 0.75", databaseRatio.ToString("F3", c), databaseRatio >= 0.75),
            new("1 round trip per order", string.Join(", ", orderScenarios.Select(s => $"{s.Scenario} {s.RoundTripsPerRequest.ToString("F2", c)}")),
                orderScenarios.All(s => Math.Abs(s.RoundTripsPerRequest - 1) < 0.005)),
            new("0 errors", string.Join(", ", scenarios.Select(s => $"{s.Scenario} {s.Errors}")) + $", pgbench {direct.Failed + tpcb.Failed}",
                scenarios.All(s => s.Errors == 0) && direct.Failed + tpcb.Failed == 0),
            new($"p99 < 50 ms at {options.Clients} clients", string.Join(", ", scenarios.Select(s => $"{s.Scenario} {s.OrderLatencyMs.P99.ToString("F2", c)} ms")),
                scenarios.All(s => s.OrderLatencyMs.P99 < 50)),
        };

        var report = new BenchReport(startedAt, $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}",
            new BenchSettings(options.Clients, options.Duration.TotalSeconds, options.Warmup.TotalSeconds, options.Traders, options.Symbols,
                options.Smoke, postgresVersion),
            scenarios, direct, tpcb, stackRatio, databaseRatio, targets);

        Directory.CreateDirectory(options.OutputDirectory);
        var stamp = startedAt.ToString("yyyyMMdd-HHmmss", c) + (options.Smoke ? "-smoke" : "");
        var jsonPath = Path.Combine(options.OutputDirectory, $"bench-{stamp}.json");
        var svgPath = Path.Combine(options.OutputDirectory, $"latency-{stamp}.svg");
        await File.WriteAllTextAsync(jsonPath, Report.Json(report), cancellationToken);
        await File.WriteAllTextAsync(svgPath, Report.LatencySvg(report), cancellationToken);
        return (report, jsonPath, svgPath);
    }

    private static async Task<string> ServerVersionAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        return connection.PostgreSqlVersion.ToString();
    }
}
