using OrderFunctions.Bench;

// The benchmark (docs/scale.md): HTTP orders/s on Kestrel vs pgbench (execute_order direct, tpcb-like) on one server.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

if (options.Verification)
{
    Console.WriteLine($"JSON: {await VerificationBenchmark.RunAsync(options, stop.Token)}");
    return 0;
}

var (report, json, svg) = await BenchmarkRunner.RunAsync(options, stop.Token);
Console.WriteLine(Report.Table(report));
Console.WriteLine($"JSON: {json}");
Console.WriteLine($"latency chart: {svg}");
if (options.Smoke)
{
    // The smoke run measures nothing on a busy CI machine; it proves every phase ran, answered without
    // errors, in one round trip per request, and wrote its report.
    var problems = report.Scenarios.Where(s => s.Orders == 0).Select(s => $"{s.Scenario}: no order completed")
        .Concat(report.Scenarios.Where(s => s.Errors > 0).Select(s => $"{s.Scenario}: {s.Errors} errors"))
        .Concat(report.Scenarios.Where(s => Math.Abs(s.RoundTripsPerRequest - 1) > 0.01).Select(s => $"{s.Scenario}: {s.RoundTripsPerRequest:F2} round trips per request"))
        .Concat(new[] { report.ExecuteOrderDirect, report.TpcbLike }.Where(p => p.Tps <= 0 || p.Failed > 0).Select(p => $"pgbench {p.Name}: {p.Tps} tps, {p.Failed} failed"))
        .Concat(report.PriceTick is { } tick && (tick.Errors.Count > 0 || tick.SystemOrders != tick.Positions)
            ? [$"price tick: {tick.SystemOrders} of {tick.Positions} positions closed by the system; {string.Join("; ", tick.Errors)}"]
            : [])
        .ToList();
    foreach (var problem in problems)
    {
        Console.Error.WriteLine($"smoke: {problem}");
    }

    Console.WriteLine(problems.Count == 0 ? "smoke: the harness works" : "smoke: FAILED");
    return problems.Count == 0 ? 0 : 1;
}

return report.Targets.All(t => t.Met) ? 0 : 1;
