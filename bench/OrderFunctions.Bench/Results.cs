namespace OrderFunctions.Bench;

public sealed record Latency(double P50, double P95, double P99, double Max, double Mean)
{
    public static Latency Of(List<double> samples)
    {
        if (samples.Count == 0)
        {
            return new Latency(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        }

        samples.Sort();
        return new Latency(Percentile(samples, 50), Percentile(samples, 95), Percentile(samples, 99), samples[^1], samples.Average());
    }

    /// <summary>Nearest-rank percentile of sorted samples.</summary>
    public static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];
}

public sealed record ScenarioResult(
    string Scenario,
    int Clients,
    double Seconds,
    long Orders,
    long Reads,
    double OrdersPerSecond,
    double RequestsPerSecond,
    Latency OrderLatencyMs,
    Latency? ReadLatencyMs,
    IReadOnlyDictionary<string, int> Outcomes,
    long Errors,
    double RoundTripsPerRequest,
    CpuUse? CpuMs,
    IReadOnlyList<double> OrderLatencyCurve)
{
    /// <summary>Percentiles at which the latency chart samples the distribution.</summary>
    public static IReadOnlyList<double> CurvePoints { get; } =
        [.. Enumerable.Range(1, 99).Select(i => (double)i), 99.5, 99.9, 100];

    public static ScenarioResult From(string scenario, int clients, TimeSpan measured, Recorder[] recorders, double roundTripsPerRequest, CpuUse? cpu)
    {
        var orders = recorders.SelectMany(r => r.OrderLatencies).ToList();
        var reads = recorders.SelectMany(r => r.ReadLatencies).ToList();
        var outcomes = recorders.SelectMany(r => r.Outcomes)
            .GroupBy(p => p.Key)
            .ToDictionary(g => g.Key, g => g.Sum(p => p.Value));
        var errors = outcomes.Where(p => p.Key != "ok").Sum(p => (long)p.Value);
        var seconds = measured.TotalSeconds;
        var orderLatency = Latency.Of(orders);
        var curve = orders.Count == 0 ? [] : CurvePoints.Select(p => Latency.Percentile(orders, p)).ToList();
        return new ScenarioResult(scenario, clients, seconds, orders.Count, reads.Count, orders.Count / seconds,
            (orders.Count + reads.Count) / seconds, orderLatency, reads.Count == 0 ? null : Latency.Of(reads), outcomes, errors,
            roundTripsPerRequest, cpu, curve);
    }
}

/// <summary>
/// The whole run. <see cref="Scenarios"/>, <see cref="ExecuteOrderDirect"/> and <see cref="TpcbLike"/> hold the median
/// round's phases (by stack ratio) and the scenarios that run once; the ratios are medians over <see cref="Rounds"/>.
/// </summary>
public sealed record BenchReport(
    DateTime StartedAt,
    string Machine,
    BenchSettings Settings,
    IReadOnlyList<ScenarioResult> Scenarios,
    PgBenchResult ExecuteOrderDirect,
    PgBenchResult TpcbLike,
    double StackRatio,
    double DatabaseRatio,
    IReadOnlyList<RatioRound> Rounds,
    IReadOnlyList<TargetCheck> Targets,
    PriceTickResult? PriceTick);

public sealed record BenchSettings(int Clients, double DurationSeconds, double WarmupSeconds, double FirstWarmupSeconds, int Rounds, int Traders, int Symbols, bool Smoke,
    string PostgresVersion, int TickPositions, int CloseBatchSize);

/// <summary>One round of the ratio phases, run back to back so both ratios compare the machine with itself.</summary>
public sealed record RatioRound(int Round, ScenarioResult Http, PgBenchResult Direct, PgBenchResult Tpcb)
{
    public double StackRatio => Http.OrdersPerSecond / Direct.Tps;

    public double DatabaseRatio => Direct.Tps / Tpcb.Tps;

    /// <summary>The middle value (the lower middle for an even count).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[(sorted.Count - 1) / 2];
    }
}

public sealed record TargetCheck(string Target, string Measured, bool Met);
