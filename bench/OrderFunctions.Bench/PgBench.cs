using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace OrderFunctions.Bench;

/// <summary>Runs pgbench against the same server: execute_order directly, and the built-in tpcb-like script.</summary>
public sealed partial class PgBench(BenchOptions options)
{
    public static string Find()
    {
        var candidates = new List<string>();
        try
        {
            using var pgConfig = Process.Start(new ProcessStartInfo("pg_config", "--bindir") { RedirectStandardOutput = true, UseShellExecute = false });
            if (pgConfig is not null)
            {
                candidates.Add(Path.Combine(pgConfig.StandardOutput.ReadToEnd().Trim(), "pgbench"));
                pgConfig.WaitForExit();
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // no pg_config on PATH
        }

        if (Directory.Exists("/usr/lib/postgresql"))
        {
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin", "pgbench")));
        }

        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "pgbench")));
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("pgbench not found: install Debian's postgresql package (its bin directory holds pgbench)");
    }

    /// <summary>execute_order called the way the API calls it (role, user, function: one round trip).</summary>
    public Task<PgBenchResult> ExecuteOrderAsync(string ordersUrl, CancellationToken cancellationToken)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "pgbench", "execute_order.sql");
        return RunAsync("execute_order (direct)", ordersUrl,
            ["-n", "-M", "simple", "-f", script, "-D", $"traders={options.Traders}", "-D", $"symbols={options.Symbols}"], cancellationToken);
    }

    /// <summary>The built-in TPC-B-like transaction at scale = clients, so clients do not queue on one branch row.</summary>
    public async Task<PgBenchResult> TpcbAsync(string tpcbUrl, CancellationToken cancellationToken)
    {
        var initialize = await ExecAsync(["-i", "-q", "-s", options.Clients.ToString(CultureInfo.InvariantCulture), tpcbUrl], cancellationToken);
        if (initialize.ExitCode != 0)
        {
            throw new InvalidOperationException("pgbench -i failed: " + initialize.Output);
        }

        return await RunAsync("tpcb-like (built-in)", tpcbUrl, ["-n", "-M", "simple", "-b", "tpcb-like"], cancellationToken);
    }

    private async Task<PgBenchResult> RunAsync(string name, string url, string[] script, CancellationToken cancellationToken)
    {
        var seconds = (int)Math.Ceiling(options.Duration.TotalSeconds);
        string[] args =
        [
            .. script, "-c", options.Clients.ToString(CultureInfo.InvariantCulture), "-j", options.Clients.ToString(CultureInfo.InvariantCulture),
            "-T", seconds.ToString(CultureInfo.InvariantCulture), "-P", "1", "-r", url,
        ];
        Console.Error.WriteLine($"  pgbench  {name}: {options.Clients} clients, {seconds} s");
        var cpu = CpuMeter.Start();
        var result = await ExecAsync(args, cancellationToken, line => Console.Error.WriteLine("  pgbench  " + line));
        var tps = TpsLine().Match(result.Output);
        var latency = LatencyLine().Match(result.Output);
        var failed = FailedLine().Match(result.Output);
        if (result.ExitCode != 0 || !tps.Success)
        {
            throw new InvalidOperationException($"pgbench ({name}) failed with exit code {result.ExitCode}: {result.Output}");
        }

        var transactions = TransactionsLine().Match(result.Output);
        var count = transactions.Success ? long.Parse(transactions.Groups[1].Value, CultureInfo.InvariantCulture) : 1;
        return new PgBenchResult(
            name,
            double.Parse(tps.Groups[1].Value, CultureInfo.InvariantCulture),
            latency.Success ? double.Parse(latency.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN,
            failed.Success ? long.Parse(failed.Groups[1].Value, CultureInfo.InvariantCulture) : 0,
            cpu.Stop(count).PostgresMsPerRequest);
    }

    private static async Task<(int ExitCode, string Output)> ExecAsync(string[] args, CancellationToken cancellationToken, Action<string>? progress = null)
    {
        var start = new ProcessStartInfo(Find()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        var stdout = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }
            }
        }, cancellationToken);
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync(cancellationToken) is { } line)
            {
                lock (output)
                {
                    output.AppendLine(line);
                }

                // pgbench -P prints its per-second progress on stderr.
                if (line.StartsWith("progress:", StringComparison.Ordinal))
                {
                    progress?.Invoke(line);
                }
            }
        }, cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        await Task.WhenAll(stdout, stderr);
        return (process.ExitCode, output.ToString());
    }

    [GeneratedRegex(@"tps = ([0-9.]+) \(without initial connection time\)")]
    private static partial Regex TpsLine();

    [GeneratedRegex(@"number of transactions actually processed: ([0-9]+)")]
    private static partial Regex TransactionsLine();

    [GeneratedRegex(@"latency average = ([0-9.]+) ms")]
    private static partial Regex LatencyLine();

    [GeneratedRegex(@"number of failed transactions: ([0-9]+)")]
    private static partial Regex FailedLine();
}

public sealed record PgBenchResult(string Name, double Tps, double LatencyAverageMs, long Failed, double PostgresCpuMsPerTransaction);
