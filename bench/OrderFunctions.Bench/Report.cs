using System.Globalization;
using System.Text;
using System.Text.Json;

namespace OrderFunctions.Bench;

/// <summary>The table on stdout, the JSON file and the latency chart (SVG).</summary>
public static class Report
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Table(BenchReport report)
    {
        var s = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        s.AppendLine(c, $"OrderFunctions benchmark  {report.StartedAt:yyyy-MM-dd HH:mm} UTC  {report.Machine}  PostgreSQL {report.Settings.PostgresVersion}");
        s.AppendLine(c, $"{report.Settings.Clients} clients, {report.Settings.DurationSeconds:F0} s per phase after {report.Settings.WarmupSeconds:F0} s warm-up ({report.Settings.FirstWarmupSeconds:F0} s for the first), {report.Settings.Traders} traders, {report.Settings.Rounds} round(s) of the ratio phases{(report.Settings.Smoke ? "  (SMOKE: proves the harness, measures nothing)" : "")}");
        s.AppendLine();
        s.AppendLine("| phase | orders/s | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | round trips/req | CPU ms/req .NET | CPU ms/req PostgreSQL |");
        s.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in report.Scenarios)
        {
            s.AppendLine(c, $"| HTTP {r.Scenario} | {r.OrdersPerSecond:F0} | {r.RequestsPerSecond:F0} | {r.OrderLatencyMs.P50:F2} | {r.OrderLatencyMs.P95:F2} | {r.OrderLatencyMs.P99:F2} | {r.OrderLatencyMs.Max:F2} | {r.Errors} | {r.RoundTripsPerRequest:F2} | {r.CpuMs?.BenchProcessMsPerRequest:F3} | {r.CpuMs?.PostgresMsPerRequest:F3} |");
        }

        foreach (var p in new[] { report.ExecuteOrderDirect, report.TpcbLike })
        {
            s.AppendLine(c, $"| pgbench {p.Name} | {p.Tps:F0} | | avg {p.LatencyAverageMs:F2} | | | | {p.Failed} | 1.00 | | {p.PostgresCpuMsPerTransaction:F3} |");
        }

        s.AppendLine();
        if (report.Rounds.Count > 1)
        {
            s.AppendLine("| round | HTTP orders/s | direct execute_order tps | tpcb-like tps | stack ratio | database ratio |");
            s.AppendLine("|---:|---:|---:|---:|---:|---:|");
            foreach (var r in report.Rounds)
            {
                s.AppendLine(c, $"| {r.Round} | {r.Http.OrdersPerSecond:F0} | {r.Direct.Tps:F0} | {r.Tpcb.Tps:F0} | {r.StackRatio:F3} | {r.DatabaseRatio:F3} |");
            }

            s.AppendLine(c, $"The first table's HTTP {report.Rounds[0].Http.Scenario} and pgbench rows are the round with the median stack ratio.");
            s.AppendLine();
        }

        var of = report.Rounds.Count > 1 ? $"median of {report.Rounds.Count} rounds" : "one round";
        s.AppendLine(c, $"stack ratio    = HTTP {report.Rounds[0].Http.Scenario} orders/s ÷ direct execute_order tps = {report.StackRatio:F3}  ({of})");
        s.AppendLine(c, $"database ratio = direct execute_order tps ÷ tpcb-like tps          = {report.DatabaseRatio:F3}  ({of})");
        s.AppendLine("CPU ms/req: CPU time per request of this process (LocalHost server + load generator) and of all postgres");
        s.AppendLine(c, $"processes, over the measured window; {Environment.ProcessorCount} cores give {Environment.ProcessorCount * 1000} CPU ms per second in all.");
        s.AppendLine();
        foreach (var t in report.Targets)
        {
            s.AppendLine(c, $"  [{(t.Met ? "met" : "NOT MET")}] {t.Target}: {t.Measured}");
        }

        foreach (var r in report.Scenarios.Where(r => r.Errors > 0))
        {
            s.AppendLine(c, $"  {r.Scenario} outcomes: {string.Join(", ", r.Outcomes.Select(o => $"{o.Key} ×{o.Value}"))}");
        }

        if (report.PriceTick is { } tick)
        {
            s.AppendLine();
            s.AppendLine("| price tick | positions | time until all closed | closes/s | requests | risk batches | closes per batch | longest batch | errors |");
            s.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            s.AppendLine(c, $"| one price through every stop-loss | {tick.Positions} | {tick.SecondsUntilAllClosed:F2} s | {tick.ClosesPerSecond:F0} | {tick.Requests} | {tick.Batches} | {tick.BatchSize} | {tick.MaxBatchMs:F0} ms | {tick.Errors.Count} |");
            foreach (var error in tick.Errors)
            {
                s.AppendLine(c, $"  price tick: {error}");
            }
        }

        return s.ToString();
    }

    public static string Json(BenchReport report) => JsonSerializer.Serialize(report, JsonOptions);

    /// <summary>Order latency by percentile, one line per scenario (log scale), readable in any browser.</summary>
    public static string LatencySvg(BenchReport report)
    {
        const int width = 760, height = 420, left = 70, right = 160, top = 40, bottom = 50;
        var plotW = width - left - right;
        var plotH = height - top - bottom;
        var series = report.Scenarios.Where(r => r.OrderLatencyCurve.Count > 0).ToList();
        var max = Math.Max(1, series.SelectMany(r => r.OrderLatencyCurve).DefaultIfEmpty(1).Max());
        var min = Math.Max(0.05, series.SelectMany(r => r.OrderLatencyCurve).DefaultIfEmpty(0.1).Min());
        double logMin = Math.Log10(min), logMax = Math.Log10(max * 1.1);
        double Y(double ms) => top + plotH - (Math.Log10(Math.Max(ms, min)) - logMin) / (logMax - logMin) * plotH;
        // x: percentile on a "nines" scale so the tail (p99, p99.9) gets room.
        double X(double p) => left + Math.Min(1, -Math.Log10(1 - Math.Min(p, 99.95) / 100) / 3.3) * plotW;
        string[] colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
        var c = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        s.AppendLine(c, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">""");
        s.AppendLine(c, $"""<rect width="{width}" height="{height}" fill="white"/>""");
        s.AppendLine(c, $"""<text x="{left}" y="22" font-size="15">POST /api/orders latency by percentile — {report.Settings.Clients} clients{(report.Settings.Smoke ? " (smoke)" : "")}</text>""");
        s.AppendLine(c, $"""<rect x="{left}" y="{top}" width="{plotW}" height="{plotH}" fill="none" stroke="#888"/>""");
        foreach (var p in new[] { 50.0, 90, 95, 99, 99.9 })
        {
            s.AppendLine(c, $"""<line x1="{X(p):F1}" y1="{top}" x2="{X(p):F1}" y2="{top + plotH}" stroke="#ddd"/><text x="{X(p):F1}" y="{top + plotH + 18}" text-anchor="middle">p{p}</text>""");
        }

        for (var decade = Math.Floor(logMin); decade <= Math.Ceiling(logMax); decade++)
        {
            foreach (var m in new[] { 1.0, 2, 5 })
            {
                var ms = m * Math.Pow(10, decade);
                if (ms < min || ms > max * 1.1)
                {
                    continue;
                }

                s.AppendLine(c, $"""<line x1="{left}" y1="{Y(ms):F1}" x2="{left + plotW}" y2="{Y(ms):F1}" stroke="#eee"/><text x="{left - 6}" y="{Y(ms) + 4:F1}" text-anchor="end">{ms:G3} ms</text>""");
            }
        }

        s.AppendLine(c, $"""<text x="{left + plotW / 2}" y="{height - 10}" text-anchor="middle">percentile of requests (each step right adds a nine)</text>""");
        for (var i = 0; i < series.Count; i++)
        {
            var r = series[i];
            var points = string.Join(' ', ScenarioResult.CurvePoints.Zip(r.OrderLatencyCurve, (p, ms) => $"{X(p):F1},{Y(ms):F1}"));
            s.AppendLine(c, $"""<polyline fill="none" stroke="{colors[i % colors.Length]}" stroke-width="2" points="{points}"/>""");
            s.AppendLine(c, $"""<text x="{left + plotW + 12}" y="{top + 20 + i * 34}" fill="{colors[i % colors.Length]}">{r.Scenario}: {r.OrdersPerSecond:F0} orders/s</text>""");
            s.AppendLine(c, $"""<text x="{left + plotW + 12}" y="{top + 36 + i * 34}" fill="{colors[i % colors.Length]}">p99 {r.OrderLatencyMs.P99:F1} ms</text>""");
        }

        s.AppendLine("</svg>");
        return s.ToString();
    }
}
