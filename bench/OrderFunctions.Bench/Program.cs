using OrderFunctions.Bench;

// Benchmark of DESIGN.md §8: HTTP orders/s on Kestrel vs pgbench (execute_order direct, tpcb-like) on one server.
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

var (report, json, svg) = await BenchmarkRunner.RunAsync(options, stop.Token);
Console.WriteLine(Report.Table(report));
Console.WriteLine($"JSON: {json}");
Console.WriteLine($"latency chart: {svg}");
return report.Targets.All(t => t.Met) || options.Smoke ? 0 : 1;
