using System.Globalization;
using Npgsql;

namespace OrderFunctions.Testing;

/// <summary>
/// A throwaway PostgreSQL cluster made from the server binaries on this machine: initdb into a scratch
/// directory, trust authentication on 127.0.0.1 only, a free port. initdb and postgres refuse to run as
/// root, so as root they run as the <c>postgres</c> OS user. The cluster is stopped and deleted when the
/// process exits, by a watchdog that also fires if the process is killed; clusters of runs that crashed
/// anyway are cleaned by the next start.
/// </summary>
public sealed class LocalPostgresCluster
{
    private const string ServerUser = "postgres";
    private const string Superuser = "postgres";
    private const string Kind = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(120);

    private readonly ExitWatchdog _watchdog;

    private LocalPostgresCluster(string binDirectory, string dataDirectory, int port, ExitWatchdog watchdog)
    {
        BinDirectory = binDirectory;
        DataDirectory = dataDirectory;
        Port = port;
        _watchdog = watchdog;
        ConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = Superuser,
            Database = "postgres",
        }.ConnectionString;
    }

    public string BinDirectory { get; }

    public string DataDirectory { get; }

    public int Port { get; }

    /// <summary>Superuser on the <c>postgres</c> database.</summary>
    public string ConnectionString { get; }

    /// <param name="durable">
    /// False for tests: fsync, synchronous_commit and full_page_writes off (a crash loses the cluster, which is
    /// thrown away anyway). True where timings must mean something, e.g. a benchmark.
    /// </param>
    public static async Task<LocalPostgresCluster> StartAsync(bool durable = false, CancellationToken cancellationToken = default)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("a local PostgreSQL cluster is started on Linux and macOS only; set ORDERS_TEST_POSTGRES or run Docker");
        }

        var bin = await FindBinDirectoryAsync(cancellationToken);
        var runAs = RunAsServerUser();
        await StopAbandonedAsync(bin, runAs, cancellationToken);

        var directory = ScratchDirectories.Create(Kind);
        var data = Path.Combine(directory, "data");
        var log = Path.Combine(directory, "postgres.log");
        var pgCtl = Path.Combine(bin, "pg_ctl");
        var watchdog = ExitWatchdog.Start(directory, [.. runAs, pgCtl, "stop", "-D", data, "-m", "immediate", "-w"]);
        try
        {
            if (Commands.IsRoot)
            {
                await Commands.RunAsync("chown", [ServerUser, directory], CommandTimeout, cancellationToken);
            }

            await RunAsync(runAs, Path.Combine(bin, "initdb"), ["-D", data, "-U", Superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], cancellationToken);
            Configure(data, durable);
            var port = await StartServerAsync(runAs, pgCtl, data, log, cancellationToken);
            var cluster = new LocalPostgresCluster(bin, data, port, watchdog);
            await Readiness.WaitAsync($"PostgreSQL on 127.0.0.1:{port}", TimeSpan.FromSeconds(60), async ct =>
            {
                await using var connection = new NpgsqlConnection(cluster.ConnectionString + ";Pooling=false");
                await connection.OpenAsync(ct);
            }, cancellationToken: cancellationToken);
            return cluster;
        }
        catch
        {
            watchdog.Release(CommandTimeout);
            throw;
        }
    }

    /// <summary>Stops the server and deletes its directory.</summary>
    public void Stop() => _watchdog.Release(CommandTimeout);

    private static void Configure(string data, bool durable)
    {
        // Only TCP on loopback: no socket directory to own, nothing reachable from outside this machine.
        File.WriteAllText(Path.Combine(data, "pg_hba.conf"), "host all all 127.0.0.1/32 trust\n");
        var onOff = durable ? "on" : "off";
        File.AppendAllText(Path.Combine(data, "postgresql.conf"), $"""

            # OrderFunctions.Testing
            listen_addresses = '127.0.0.1'
            unix_socket_directories = ''
            max_connections = 300
            fsync = {onOff}
            synchronous_commit = {onOff}
            full_page_writes = {onOff}

            """);
    }

    private static async Task<int> StartServerAsync(string[] runAs, string pgCtl, string data, string log, CancellationToken cancellationToken)
    {
        // A free port can be taken by someone else between choosing it and binding it: choose again.
        for (var attempt = 1; ; attempt++)
        {
            var port = Commands.FreeLoopbackPort();
            try
            {
                await RunAsync(runAs, pgCtl, ["start", "-D", data, "-l", log, "-w", "-t", "60", "-o", $"-p {port.ToString(CultureInfo.InvariantCulture)}"], cancellationToken);
                return port;
            }
            catch (InvalidOperationException e) when (attempt < 5 && ReadLog(log).Contains("could not bind", StringComparison.Ordinal))
            {
                TestLog.Write($"port {port} was taken, choosing another: {e.Message}");
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                throw new InvalidOperationException($"{e.Message}\n--- {log} ---\n{ReadLog(log)}", e);
            }
        }
    }

    private static Task<string> RunAsync(string[] runAs, string program, string[] arguments, CancellationToken cancellationToken) =>
        runAs.Length == 0
            ? Commands.RunAsync(program, arguments, CommandTimeout, cancellationToken)
            : Commands.RunAsync(runAs[0], [.. runAs[1..], program, .. arguments], CommandTimeout, cancellationToken);

    private static async Task StopAbandonedAsync(string bin, string[] runAs, CancellationToken cancellationToken)
    {
        foreach (var directory in ScratchDirectories.Abandoned(Kind).ToList())
        {
            var data = Path.Combine(directory, "data");
            var pidFile = Path.Combine(data, "postmaster.pid");
            if (File.Exists(pidFile)
                && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var postmaster)
                && ScratchDirectories.IsAlive(postmaster))
            {
                try
                {
                    await RunAsync(runAs, Path.Combine(bin, "pg_ctl"), ["stop", "-D", data, "-m", "immediate", "-w"], cancellationToken);
                }
                catch (Exception e) when (e is InvalidOperationException or TimeoutException)
                {
                    TestLog.Write($"could not stop the abandoned cluster in {data}: {e.Message}");
                    continue;
                }
            }

            TestLog.Write($"deleting the abandoned cluster {directory}");
            ScratchDirectories.TryDelete(directory);
        }
    }

    private static string[] RunAsServerUser()
    {
        if (!Commands.IsRoot)
        {
            return [];
        }

        if (!File.ReadLines("/etc/passwd").Any(line => line.StartsWith(ServerUser + ":", StringComparison.Ordinal)))
        {
            throw new InvalidOperationException($"running as root, and initdb refuses root: create the OS user '{ServerUser}' (Debian's postgresql package does), or set ORDERS_TEST_POSTGRES");
        }

        if (Commands.Which("runuser") is { } runuser)
        {
            return [runuser, "-u", ServerUser, "--"];
        }

        if (Commands.Which("setpriv") is { } setpriv)
        {
            return [setpriv, $"--reuid={ServerUser}", $"--regid={ServerUser}", "--init-groups"];
        }

        throw new InvalidOperationException("running as root, and neither runuser nor setpriv is there to run initdb as the postgres user");
    }

    private static async Task<string> FindBinDirectoryAsync(CancellationToken cancellationToken)
    {
        if (Commands.Which("pg_config") is { } pgConfig)
        {
            try
            {
                var bin = (await Commands.RunAsync(pgConfig, ["--bindir"], TimeSpan.FromSeconds(10), cancellationToken)).Trim();
                if (File.Exists(Path.Combine(bin, "initdb")))
                {
                    return bin;
                }
            }
            catch (InvalidOperationException)
            {
                // Look elsewhere.
            }
        }

        // Debian and Ubuntu keep server binaries off PATH, one directory per major version: take the newest.
        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.EnumerateDirectories("/usr/lib/postgresql")
                .Select(d => (Directory: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(d => File.Exists(Path.Combine(d.Directory, "initdb")))
                .OrderByDescending(d => d.Version)
                .Select(d => d.Directory)
                .FirstOrDefault()
            : null;
        if (debian is not null)
        {
            return debian;
        }

        if (Commands.Which("initdb") is { } initdb)
        {
            return Path.GetDirectoryName(initdb)!;
        }

        throw new InvalidOperationException("no PostgreSQL server binaries (initdb) found: install Debian's 'postgresql' package, run Docker, or set ORDERS_TEST_POSTGRES to a connection string");
    }

    private static string ReadLog(string log)
    {
        try
        {
            return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(30)) : "";
        }
        catch (IOException)
        {
            return "";
        }
    }
}
