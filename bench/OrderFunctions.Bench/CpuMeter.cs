using System.Diagnostics;
using System.Globalization;

namespace OrderFunctions.Bench;

/// <summary>
/// CPU time spent by this process (the LocalHost server and the load generator share it) and by every
/// PostgreSQL process on the machine, between two readings: what each side costs per request, which tells
/// what bounds the throughput on a small machine where both compete for the same cores.
/// </summary>
public sealed class CpuMeter
{
    private readonly TimeSpan _bench;
    private readonly TimeSpan _postgres;

    private CpuMeter(TimeSpan bench, TimeSpan postgres)
    {
        _bench = bench;
        _postgres = postgres;
    }

    public static CpuMeter Start() => new(Process.GetCurrentProcess().TotalProcessorTime, PostgresCpu());

    public CpuUse Stop(long requests)
    {
        var bench = Process.GetCurrentProcess().TotalProcessorTime - _bench;
        var postgres = PostgresCpu() - _postgres;
        return new CpuUse(
            Math.Round(bench.TotalMilliseconds / Math.Max(1, requests), 4),
            Math.Round(postgres.TotalMilliseconds / Math.Max(1, requests), 4));
    }

    /// <summary>user + system time of all processes named postgres and of their exited children (Linux /proc; zero elsewhere).</summary>
    private static TimeSpan PostgresCpu()
    {
        if (!Directory.Exists("/proc"))
        {
            return TimeSpan.Zero;
        }

        long ticks = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var close = stat.LastIndexOf(')');
                if (close < 0 || !stat.AsSpan(0, close).EndsWith("(postgres", StringComparison.Ordinal))
                {
                    continue;
                }

                // Fields after the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based).
                // The postmaster's cutime/cstime hold the CPU of backends that have exited (it reaps them), so
                // the sum stays whole when connections come and go between two readings.
                var fields = stat[(close + 2)..].Split(' ');
                for (var field = 11; field <= 14; field++)
                {
                    ticks += long.Parse(fields[field], CultureInfo.InvariantCulture);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // The process ended or is not ours to read.
            }
        }

        // USER_HZ is 100 on Linux.
        return TimeSpan.FromMilliseconds(ticks * 10.0);
    }
}

/// <summary>CPU milliseconds per request: this process (server + load generator) and PostgreSQL.</summary>
public sealed record CpuUse(double BenchProcessMsPerRequest, double PostgresMsPerRequest);
