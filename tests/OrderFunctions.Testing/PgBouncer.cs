using System.Globalization;
using System.Security.Cryptography;
using Npgsql;

namespace OrderFunctions.Testing;

/// <summary>
/// A real PgBouncer (Debian's <c>pgbouncer</c> package) in front of this process's <see cref="PostgresServer"/>, in
/// transaction pooling mode as Azure Database for PostgreSQL's built-in PgBouncer runs: a server connection serves
/// one transaction, then whichever client sends the next one. Every database of the server is reachable through it
/// under its own name (a <c>*</c> entry), as the application's login. It listens on a free 127.0.0.1 port, runs as
/// the <c>postgres</c> OS user when the tests run as root (PgBouncer refuses root), and is stopped and deleted when
/// the process exits, by the same kind of watchdog as the local PostgreSQL cluster.
/// </summary>
public sealed class PgBouncer
{
    /// <summary>Server connections per (database, user) pool of the shared instance: enough for a test class's parallel requests.</summary>
    public const int SharedPoolSize = 20;

    private const string Kind = "pgbouncer";
    private const string ServerUser = "postgres";
    private const string AdminUser = "pgbouncer_admin";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private static readonly Lazy<Task<PgBouncer>> Shared = new(() => StartAsync(SharedPoolSize));

    private readonly ExitWatchdog _watchdog;
    private readonly string _adminPassword;

    private PgBouncer(int port, int poolSize, string version, string directory, string adminPassword, ExitWatchdog watchdog)
    {
        Port = port;
        PoolSize = poolSize;
        Version = version;
        Directory = directory;
        _adminPassword = adminPassword;
        _watchdog = watchdog;
    }

    public int Port { get; }

    /// <summary>default_pool_size: server connections per (database, user).</summary>
    public int PoolSize { get; }

    /// <summary>What <c>SHOW VERSION</c> answers, e.g. "PgBouncer 1.18.0".</summary>
    public string Version { get; }

    /// <summary>Where its configuration and log are.</summary>
    public string Directory { get; }

    /// <summary>The PgBouncer of this test process (pool size <see cref="SharedPoolSize"/>), started on first use.</summary>
    public static Task<PgBouncer> GetAsync() => Shared.Value;

    /// <summary>A PgBouncer of the caller's own, e.g. with a pool of one server connection; <see cref="Stop"/> it when done.</summary>
    public static async Task<PgBouncer> StartAsync(int poolSize, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(poolSize, 1);
        var server = await PostgresServer.GetAsync();
        var executable = FindExecutable();
        StopAbandoned();
        var target = new NpgsqlConnectionStringBuilder(server.AdminConnectionString);
        var runAs = Commands.IsRoot ? RunAsServerUser() : [];

        // A free port can be taken between choosing and binding it: choose again.
        for (var attempt = 1; ; attempt++)
        {
            var directory = ScratchDirectories.Create(Kind);
            var port = Commands.FreeLoopbackPort();
            var adminPassword = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
            var pidFile = Path.Combine(directory, "pgbouncer.pid");
            var log = Path.Combine(directory, "pgbouncer.log");
            var config = Path.Combine(directory, "pgbouncer.ini");
            File.WriteAllText(Path.Combine(directory, "userlist.txt"), $"""
                "{PostgresServer.AppLogin}" "{PostgresServer.AppPassword}"
                "{AdminUser}" "{adminPassword}"

                """);
            File.WriteAllText(config, Configuration(target.Host ?? "127.0.0.1", target.Port, port, poolSize, directory, pidFile, log));
            // SIGTERM: immediate shutdown. Only a pgbouncer is signalled: the pid file names the daemon.
            var watchdog = ExitWatchdog.Start(directory, ["/bin/sh", "-c", "[ -f \"$0\" ] && kill -TERM \"$(cat \"$0\")\"", pidFile]);
            try
            {
                if (Commands.IsRoot)
                {
                    await Commands.RunAsync("chown", ["-R", ServerUser, directory], CommandTimeout, cancellationToken);
                }

                await RunAsync(runAs, executable, ["-d", "-q", config], cancellationToken);
                var version = await WaitUntilServingAsync(port, adminPassword, log, cancellationToken);
                var bouncer = new PgBouncer(port, poolSize, version, directory, adminPassword, watchdog);
                TestLog.Write($"PgBouncer: {version} on 127.0.0.1:{port} (pool_mode transaction, default_pool_size {poolSize}) in front of {target.Host}:{target.Port}");
                return bouncer;
            }
            catch (Exception e) when (attempt < 5 && ReadLog(log).Contains("Address already in use", StringComparison.Ordinal))
            {
                TestLog.Write($"port {port} was taken, choosing another: {e.Message}");
                watchdog.Release(CommandTimeout);
            }
            catch
            {
                watchdog.Release(CommandTimeout);
                throw;
            }
        }
    }

    /// <summary>The application's login (<see cref="PostgresServer.AppLogin"/>) on <paramref name="database"/>, through this PgBouncer.</summary>
    public string AppConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Database = database,
        Username = PostgresServer.AppLogin,
        Password = PostgresServer.AppPassword,
    }.ConnectionString;

    /// <summary>
    /// Runs a command of PgBouncer's admin console (e.g. <c>SHOW POOLS</c>) and returns its rows by column name. The
    /// console speaks only the simple query protocol, which Npgsql does not use, so psql runs it.
    /// </summary>
    public async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> ShowAsync(string command, CancellationToken cancellationToken = default)
    {
        var output = await Commands.RunAsync(Psql(),
            [$"host=127.0.0.1 port={Port.ToString(CultureInfo.InvariantCulture)} dbname=pgbouncer user={AdminUser} password={_adminPassword}",
             "-X", "-A", "-F", "\t", "-P", "footer=off", "-c", command],
            CommandTimeout, cancellationToken);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length == 0)
        {
            return [];
        }

        var columns = lines[0].Split('\t');
        return lines.Skip(1)
            .Select(line => line.Split('\t'))
            .Select(cells => (IReadOnlyDictionary<string, string>)columns.Select((c, i) => (c, i < cells.Length ? cells[i] : ""))
                .ToDictionary(p => p.c, p => p.Item2, StringComparer.Ordinal))
            .ToList();
    }

    /// <summary>Stops it and deletes its directory.</summary>
    public void Stop() => _watchdog.Release(CommandTimeout);

    private static string Configuration(string serverHost, int serverPort, int port, int poolSize, string directory, string pidFile, string log) =>
        string.Create(CultureInfo.InvariantCulture, $"""
            ;; Written by OrderFunctions.Testing: PgBouncer as Azure Flexible Server runs it, transaction pooling.
            [databases]
            * = host={serverHost} port={serverPort}

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {port}
            unix_socket_dir =
            pool_mode = transaction
            default_pool_size = {poolSize}
            min_pool_size = 0
            reserve_pool_size = 0
            max_client_conn = 2000
            ;; The server connection is not the client's to reset in transaction mode: nothing is run between clients.
            server_reset_query_always = 0
            auth_type = scram-sha-256
            auth_file = {Path.Combine(directory, "userlist.txt")}
            admin_users = {AdminUser}
            server_login_retry = 1
            query_wait_timeout = 60
            logfile = {log}
            pidfile = {pidFile}
            log_connections = 0
            log_disconnections = 0

            """);

    private static async Task<string> WaitUntilServingAsync(int port, string adminPassword, string log, CancellationToken cancellationToken)
    {
        string? version = null;
        await Readiness.WaitAsync($"PgBouncer on 127.0.0.1:{port}", TimeSpan.FromSeconds(30), async ct =>
        {
            var output = await Commands.RunAsync(Psql(),
                [$"host=127.0.0.1 port={port.ToString(CultureInfo.InvariantCulture)} dbname=pgbouncer user={AdminUser} password={adminPassword}",
                 "-X", "-A", "-t", "-c", "SHOW VERSION"], TimeSpan.FromSeconds(10), ct);
            version = output.Trim();
        }, stillStarting: () => ReadLog(log) is var text && (text.Contains("FATAL", StringComparison.Ordinal) || text.Contains("ERROR", StringComparison.Ordinal))
            ? text
            : null, cancellationToken: cancellationToken);
        return version!;
    }

    private static Task<string> RunAsync(string[] runAs, string program, string[] arguments, CancellationToken cancellationToken) =>
        runAs.Length == 0
            ? Commands.RunAsync(program, arguments, CommandTimeout, cancellationToken)
            : Commands.RunAsync(runAs[0], [.. runAs[1..], program, .. arguments], CommandTimeout, cancellationToken);

    private static string[] RunAsServerUser()
    {
        if (!File.ReadLines("/etc/passwd").Any(line => line.StartsWith(ServerUser + ":", StringComparison.Ordinal)))
        {
            throw new InvalidOperationException($"running as root, and PgBouncer refuses root: create the OS user '{ServerUser}' (Debian's postgresql package does)");
        }

        return Commands.Which("runuser") is { } runuser
            ? [runuser, "-u", ServerUser, "--"]
            : throw new InvalidOperationException("running as root, and runuser is not there to run PgBouncer as the postgres user");
    }

    private static string FindExecutable()
    {
        foreach (var candidate in new[] { Commands.Which("pgbouncer"), "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer" })
        {
            if (candidate is not null && File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("PgBouncer is not installed: install Debian's 'pgbouncer' package (apt-get install pgbouncer); .ci/run does");
    }

    private static string Psql()
    {
        if (Commands.Which("psql") is { } psql)
        {
            return psql;
        }

        var debian = System.IO.Directory.Exists("/usr/lib/postgresql")
            ? System.IO.Directory.EnumerateFiles("/usr/lib/postgresql", "psql", SearchOption.AllDirectories).FirstOrDefault()
            : null;
        return debian ?? throw new InvalidOperationException("psql is not installed (Debian's postgresql-client package): it talks to PgBouncer's admin console");
    }

    /// <summary>PgBouncers of test processes that died: stopped (only if the pid file still names a pgbouncer) and deleted.</summary>
    private static void StopAbandoned()
    {
        foreach (var directory in ScratchDirectories.Abandoned(Kind).ToList())
        {
            var pidFile = Path.Combine(directory, "pgbouncer.pid");
            if (File.Exists(pidFile)
                && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && ScratchDirectories.IsAlive(pid)
                && File.Exists($"/proc/{pid}/comm") && File.ReadAllText($"/proc/{pid}/comm").Trim() == "pgbouncer")
            {
                try
                {
                    using var process = System.Diagnostics.Process.GetProcessById(pid);
                    process.Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    TestLog.Write($"could not stop the abandoned PgBouncer {pid}: {e.Message}");
                }
            }

            TestLog.Write($"deleting the abandoned PgBouncer {directory}");
            ScratchDirectories.TryDelete(directory);
        }
    }

    private static string ReadLog(string log)
    {
        try
        {
            return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(20)) : "";
        }
        catch (IOException)
        {
            return "";
        }
    }
}
