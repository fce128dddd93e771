using System.Globalization;

namespace OrderFunctions.Bench;

/// <summary>What to run. Defaults are the full benchmark of docs/scale.md; <c>--smoke</c> shrinks it to seconds.</summary>
public sealed record BenchOptions
{
    public required string AdminConnectionString { get; init; }
    public int Clients { get; init; } = 8;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The first phase's warm-up: long enough for the JIT to finish promoting the hot paths.</summary>
    public TimeSpan FirstWarmup { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Rounds of (HTTP distinct, direct execute_order, tpcb-like) back to back; the ratios are their medians.</summary>
    public int Rounds { get; init; } = 3;
    public int Traders { get; init; } = 64;
    public int Symbols { get; init; } = 4;

    /// <summary>Open positions on one symbol that the price-tick scenario takes through their stops with one price (0: skip it).</summary>
    public int TickPositions { get; init; } = 10_000;

    /// <summary>Risk__CloseBatchSize of the server: closes per risk-engine transaction.</summary>
    public int CloseBatchSize { get; init; } = 500;
    public IReadOnlyList<string> Scenarios { get; init; } = Scenario.All;
    public bool Smoke { get; init; }
    public string OutputDirectory { get; init; } = "bench/results";
    public string DatabaseName { get; init; } = "orders_bench";

    /// <summary>Measure verification on a large history instead of order throughput (<c>--verification</c>).</summary>
    public bool Verification { get; init; }
    public int VerificationRows { get; init; } = 1_000_000;
    public int VerificationRepeats { get; init; } = 5;

    public const string Usage = """
        usage: OrderFunctions.Bench [--postgres "<admin Npgsql connection string>"] [--clients 8] [--duration 30]
                                    [--warmup 5] [--first-warmup 20] [--rounds 3] [--traders 64]
                                    [--scenarios distinct,hot,mixed] [--tick-positions 10000] [--tick-batch 500]
                                    [--out bench/results] [--smoke]
          --postgres   a superuser connection string (default: $ORDERS_BENCH_POSTGRES, then $ORDERS_PG_CONNECTION as
                       exported by scripts/lib/postgres.sh); the benchmark (re)creates the databases orders_bench
                       and orders_bench_tpcb on that server
          --first-warmup
                       the first phase's warm-up in seconds: the JIT is still compiling and promoting code for
                       the first 10-20 s of a run (perf), and a phase measured then is not the steady state
          --rounds     how often the ratio phases (the first scenario, direct execute_order, tpcb-like) run back to
                       back; the machine drifts within minutes, so each ratio is taken within a round and the
                       median round is reported
          --tick-positions
                       open positions (each its own account's, one symbol) that one price takes through their stops in
                       the price-tick scenario, after the others; 0 skips it
          --tick-batch the server's Risk__CloseBatchSize: closes per risk-engine transaction
          --smoke      a few seconds per phase with 2 clients and one round: proves the harness works, measures nothing
          --verification [--rows 1000000] [--repeats 5]
                       instead: the orphan scan over that many execution-log rows and the integrity route for an
                       account of 100,000 of them, each repeated (medians), before and after the checkpoints
        """;

    public static BenchOptions Parse(string[] args)
    {
        string? connection = Environment.GetEnvironmentVariable("ORDERS_BENCH_POSTGRES") ?? Environment.GetEnvironmentVariable("ORDERS_PG_CONNECTION");
        var options = new BenchOptions { AdminConnectionString = "" };
        var smoke = args.Contains("--smoke");
        if (smoke)
        {
            options = options with
            {
                Smoke = true, Clients = 2, Duration = TimeSpan.FromSeconds(2), Warmup = TimeSpan.FromSeconds(0.5), Traders = 4, Rounds = 1,
                FirstWarmup = TimeSpan.FromSeconds(0.5), TickPositions = 50, CloseBatchSize = 20,
            };
        }

        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--smoke" => options,
                "--postgres" => options with { AdminConnectionString = Next() },
                "--clients" => options with { Clients = PositiveInt(Next(), "--clients") },
                "--duration" => options with { Duration = TimeSpan.FromSeconds(PositiveInt(Next(), "--duration")) },
                "--warmup" => options with { Warmup = TimeSpan.FromSeconds(int.Parse(Next(), CultureInfo.InvariantCulture)) },
                "--first-warmup" => options with { FirstWarmup = TimeSpan.FromSeconds(int.Parse(Next(), CultureInfo.InvariantCulture)) },
                "--rounds" => options with { Rounds = PositiveInt(Next(), "--rounds") },
                "--traders" => options with { Traders = PositiveInt(Next(), "--traders") },
                "--scenarios" => options with { Scenarios = ParseScenarios(Next()) },
                "--tick-positions" => options with { TickPositions = int.Parse(Next(), NumberStyles.None, CultureInfo.InvariantCulture) },
                "--tick-batch" => options with { CloseBatchSize = PositiveInt(Next(), "--tick-batch") },
                "--out" => options with { OutputDirectory = Next() },
                "--verification" => options with { Verification = true },
                "--rows" => options with { VerificationRows = PositiveInt(Next(), "--rows") },
                "--repeats" => options with { VerificationRepeats = PositiveInt(Next(), "--repeats") },
                _ => throw new ArgumentException($"unknown argument {args[i]}"),
            };
        }

        if (string.IsNullOrEmpty(options.AdminConnectionString))
        {
            options = options with { AdminConnectionString = connection ?? throw new ArgumentException("no --postgres and no ORDERS_BENCH_POSTGRES / ORDERS_PG_CONNECTION") };
        }

        if (options.Traders < options.Clients)
        {
            options = options with { Traders = options.Clients };
        }

        return options;
    }

    private static int PositiveInt(string text, string name) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"{name} must be a positive integer");

    private static string[] ParseScenarios(string text)
    {
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var unknown = names.Except(Scenario.All).ToList();
        return unknown.Count == 0 && names.Length > 0
            ? names
            : throw new ArgumentException($"--scenarios takes {string.Join(",", Scenario.All)}");
    }
}

public static class Scenario
{
    /// <summary>Each client trades its own accounts: no row contention.</summary>
    public const string Distinct = "distinct";

    /// <summary>Every client trades one account: the account row lock serialises them.</summary>
    public const string Hot = "hot";

    /// <summary>Half orders, half reads (trade listing of 50, account).</summary>
    public const string Mixed = "mixed";

    public static IReadOnlyList<string> All { get; } = [Distinct, Hot, Mixed];
}
