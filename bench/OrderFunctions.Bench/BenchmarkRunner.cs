using System.Globalization;
using System.Runtime.InteropServices;
using Npgsql;

namespace OrderFunctions.Bench;

/// <summary>
/// One benchmark run: fresh databases, the LocalHost on Kestrel, rounds of (HTTP distinct, pgbench's direct
/// execute_order, pgbench's tpcb-like) against the same server, the other HTTP scenarios once, then the report.
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
        var pgbench = new PgBench(options);
        var ordersUrl = BenchDatabase.LibpqUrl(database.OrdersConnectionString);
        var tpcbUrl = BenchDatabase.LibpqUrl(database.TpcbConnectionString);
        // The ratio phases run in rounds, back to back: a shared machine drifts within minutes, so a ratio of two
        // phases minutes apart measures the drift as much as the code.
        var ratioScenario = options.Scenarios.Contains(Scenario.Distinct) ? Scenario.Distinct : options.Scenarios[0];
        var rounds = new List<RatioRound>();
        var once = new List<ScenarioResult>();
        PriceTickResult? tick = null;
        await using (var server = await LocalServer.StartAsync(database.AppConnectionString, options.CloseBatchSize, cancellationToken))
        {
            Console.Error.WriteLine($"bench: LocalHost on {server.Address}");
            var load = new LoadGenerator(server.Address, options, roundTrips);
            for (var round = 1; round <= options.Rounds; round++)
            {
                var of = $"round {round}/{options.Rounds}";
                var warmup = round == 1 ? options.FirstWarmup : options.Warmup;
                Console.Error.WriteLine($"bench: {of}: HTTP {ratioScenario}, {options.Clients} clients, {warmup.TotalSeconds:F0} s warm-up + {options.Duration.TotalSeconds:F0} s");
                var http = await load.RunAsync(ratioScenario, warmup, cancellationToken);
                Console.Error.WriteLine($"bench: {of}: pgbench execute_order (direct)");
                var roundDirect = await pgbench.ExecuteOrderAsync(ordersUrl, cancellationToken);
                Console.Error.WriteLine($"bench: {of}: pgbench tpcb-like");
                var roundTpcb = await pgbench.TpcbAsync(tpcbUrl, cancellationToken);
                rounds.Add(new RatioRound(round, http, roundDirect, roundTpcb));
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"bench: {of}: {http.OrdersPerSecond:F0} orders/s, direct {roundDirect.Tps:F0} tps, tpcb-like {roundTpcb.Tps:F0} tps: stack ratio {rounds[^1].StackRatio:F3}, database ratio {rounds[^1].DatabaseRatio:F3}"));
            }

            foreach (var scenario in options.Scenarios.Where(s => s != ratioScenario))
            {
                Console.Error.WriteLine($"bench: HTTP {scenario}, {options.Clients} clients, {options.Warmup.TotalSeconds:F0} s warm-up + {options.Duration.TotalSeconds:F0} s");
                once.Add(await load.RunAsync(scenario, options.Warmup, cancellationToken));
            }

            if (options.TickPositions > 0)
            {
                var priceTick = new PriceTick(database, options);
                Console.Error.WriteLine($"bench: price tick: opening {options.TickPositions} positions on {PriceTick.Symbol}, each with a stop-loss at 95");
                await priceTick.ArrangeAsync(cancellationToken);
                Console.Error.WriteLine($"bench: price tick: one price (90) through every stop, {options.CloseBatchSize} closes per transaction");
                tick = await priceTick.RunAsync(server.Address, cancellationToken);
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"bench: price tick: {tick.Closed} closed in {tick.SecondsUntilAllClosed:F2} s ({tick.ClosesPerSecond:F0} closes/s), {tick.Batches} batches, longest {tick.MaxBatchMs:F0} ms"));
            }
        }

        var stackRatio = RatioRound.Median(rounds.Select(r => r.StackRatio));
        var databaseRatio = RatioRound.Median(rounds.Select(r => r.DatabaseRatio));
        var median = rounds.First(r => r.StackRatio == stackRatio);
        var scenarios = options.Scenarios.Select(name => name == ratioScenario ? median.Http : once.Single(s => s.Scenario == name)).ToList();
        var direct = median.Direct;
        var tpcb = median.Tpcb;
        var allPhases = rounds.Select(r => r.Http).Concat(once).ToList();
        var c = CultureInfo.InvariantCulture;
        var orderScenarios = allPhases.Where(s => s.Scenario != Scenario.Mixed).ToList();
        var targets = new List<TargetCheck>
        {
            new("stack ratio >= 0.8", stackRatio.ToString("F3", c), stackRatio >= 0.8),
            new("database ratio >= 0.65", databaseRatio.ToString("F3", c), databaseRatio >= 0.65),
            new("database ratio >= 0.75 (the goal)", databaseRatio.ToString("F3", c), databaseRatio >= 0.75),
            new("1 round trip per order", string.Join(", ", orderScenarios.Select(s => $"{s.Scenario} {s.RoundTripsPerRequest.ToString("F2", c)}").Distinct()),
                orderScenarios.All(s => Math.Abs(s.RoundTripsPerRequest - 1) < 0.005)),
            new("0 errors", string.Join(", ", scenarios.Select(s => $"{s.Scenario} {allPhases.Where(p => p.Scenario == s.Scenario).Sum(p => p.Errors)}"))
                    + $", pgbench {rounds.Sum(r => r.Direct.Failed + r.Tpcb.Failed)}",
                allPhases.All(s => s.Errors == 0) && rounds.All(r => r.Direct.Failed + r.Tpcb.Failed == 0)),
            new($"p99 < 50 ms at {options.Clients} clients", string.Join(", ", scenarios.Select(s => $"{s.Scenario} {s.OrderLatencyMs.P99.ToString("F2", c)} ms")),
                scenarios.All(s => s.OrderLatencyMs.P99 < 50)),
        };

        var report = new BenchReport(startedAt, $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}",
            new BenchSettings(options.Clients, options.Duration.TotalSeconds, options.Warmup.TotalSeconds, options.FirstWarmup.TotalSeconds, options.Rounds, options.Traders,
                options.Symbols, options.Smoke, postgresVersion, options.TickPositions, options.CloseBatchSize),
            scenarios, direct, tpcb, stackRatio, databaseRatio, rounds, targets, tick);

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
