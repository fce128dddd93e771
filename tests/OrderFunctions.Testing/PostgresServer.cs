using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;
using OrderFunctions.Db;
using Testcontainers.PostgreSql;

namespace OrderFunctions.Testing;

/// <summary>
/// The PostgreSQL server of this test process, started once on first use and found in this order:
/// <c>ORDERS_TEST_POSTGRES</c> (an admin connection string; several test processes may share that server),
/// a Docker engine (Testcontainers, <see cref="Image"/>), else <see cref="LocalPostgresCluster"/>.
/// It hands out databases cloned from a template migrated once per process.
/// </summary>
public sealed partial class PostgresServer
{
    /// <summary>Pinned: a floating tag would change the server under the tests without a commit.</summary>
    public const string Image = "postgres:15.10";

    /// <summary>The login the application connects as (granted orders_api and orders_maintenance); created once per cluster.</summary>
    public const string AppLogin = "orders_app";

    public const string AppPassword = "orders_app_local";

    // Advisory locks are per database: every process takes these in the `postgres` database.
    private const long ClusterLock = 0x4f46_5465_7374_0001; // serialises migrations and role changes on one server: LockMigrationsAsync
    private const int LeaseNamespace = 0x4f46_5473; // (namespace, lease) held by each live process for its databases

    private static readonly Lazy<Task<PostgresServer>> Shared = new(StartAsync);

    private readonly NpgsqlDataSource _admin;
    private readonly NpgsqlConnection _leaseConnection;
    private readonly int _lease;
    private readonly Action? _stopServer;
    private readonly Lazy<Task<string>> _template;
    private int _databases;

    private PostgresServer(string adminConnectionString, string description, NpgsqlConnection leaseConnection, int lease, Action? stopServer)
    {
        AdminConnectionString = adminConnectionString;
        Description = description;
        _admin = NpgsqlDataSource.Create(adminConnectionString);
        _leaseConnection = leaseConnection;
        _lease = lease;
        _stopServer = stopServer;
        _template = new Lazy<Task<string>>(CreateTemplateAsync);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Shutdown();
    }

    /// <summary>Superuser on the <c>postgres</c> database.</summary>
    public string AdminConnectionString { get; }

    /// <summary>Where the server came from, for logs.</summary>
    public string Description { get; }

    public static Task<PostgresServer> GetAsync() => Shared.Value;

    /// <summary>The admin connection string with another database.</summary>
    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = database }.ConnectionString;

    /// <summary>The application's login on <paramref name="database"/>.</summary>
    public string AppConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = database, Username = AppLogin, Password = AppPassword }.ConnectionString;

    /// <summary>
    /// Creates a database of this process: a clone of the migrated template, or with <paramref name="migrated"/>
    /// false an empty one (for tests of the migrations themselves). Returns its name.
    /// </summary>
    public async Task<string> CreateDatabaseAsync(bool migrated = true, CancellationToken cancellationToken = default)
    {
        var template = migrated ? await _template.Value.WaitAsync(cancellationToken) : "template0";
        var name = string.Create(CultureInfo.InvariantCulture, $"orders_test_{Environment.ProcessId}_{_lease}_{Interlocked.Increment(ref _databases)}");
        await ExecuteAsync(_admin, $"CREATE DATABASE {Quote(name)} TEMPLATE {Quote(template)}", cancellationToken);
        return name;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, disconnecting whoever is still on it.</summary>
    public Task DropDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        if (!OwnedDatabase().IsMatch(name))
        {
            throw new ArgumentException($"'{name}' is not a database this library created", nameof(name));
        }

        return ExecuteAsync(_admin, $"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)", cancellationToken);
    }

    private static async Task<PostgresServer> StartAsync()
    {
        string connectionString;
        string description;
        Action? stop = null;
        if (Environment.GetEnvironmentVariable("ORDERS_TEST_POSTGRES") is { Length: > 0 } configured)
        {
            connectionString = configured;
            var b = new NpgsqlConnectionStringBuilder(configured);
            description = $"ORDERS_TEST_POSTGRES ({b.Host}:{b.Port})";
        }
        else if (await DockerEngine.FindEndpointAsync() is { } endpoint)
        {
            var container = new PostgreSqlBuilder(Image)
                .WithCommand("-c", "max_connections=300")
                .Build();
            await container.StartAsync();
            connectionString = container.GetConnectionString();
            description = $"Testcontainers {Image} via {endpoint} on port {container.GetMappedPublicPort(PostgreSqlBuilder.PostgreSqlPort)}";
            stop = () => container.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(30));
        }
        else
        {
            var cluster = await LocalPostgresCluster.StartAsync();
            connectionString = cluster.ConnectionString;
            description = $"local cluster from {cluster.BinDirectory} on 127.0.0.1:{cluster.Port} in {cluster.DataDirectory}";
            stop = cluster.Stop;
        }

        TestLog.Write($"PostgreSQL: {description}");
        var admin = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres" };
        try
        {
            var (leaseConnection, lease) = await TakeLeaseAsync(admin.ConnectionString);
            return new PostgresServer(admin.ConnectionString, description, leaseConnection, lease, stop);
        }
        catch
        {
            stop?.Invoke();
            throw;
        }
    }

    /// <summary>
    /// A number held as a session advisory lock for this process's lifetime and put into the names of its
    /// databases, so another process can tell which databases were left behind by a run that died.
    /// </summary>
    private static async Task<(NpgsqlConnection, int)> TakeLeaseAsync(string adminConnectionString)
    {
        var connection = new NpgsqlConnection(adminConnectionString + ";Pooling=false;Application Name=OrderFunctions.Testing lease");
        try
        {
            await connection.OpenAsync();
            while (true)
            {
                var lease = Random.Shared.Next(1, int.MaxValue);
                if (await ScalarAsync<bool>(connection, "SELECT pg_try_advisory_lock($1, $2)", LeaseNamespace, lease))
                {
                    return (connection, lease);
                }
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Holds this server's migration lock until the connection is disposed. Migrations create cluster-wide roles, and
    /// the template every fixture of a process waits on is migrated once: a test that runs a migration of its own beside
    /// it (in this process, or the migration CLI in another) must not be able to fail it. The template's migration takes
    /// this lock, and so must every test that migrates a database itself.
    /// </summary>
    public async Task<NpgsqlConnection> LockMigrationsAsync()
    {
        var connection = new NpgsqlConnection(AdminConnectionString + ";Pooling=false;Application Name=OrderFunctions.Testing migration lock");
        try
        {
            await connection.OpenAsync();
            await ScalarAsync<object>(connection, "SELECT pg_advisory_lock($1)", ClusterLock);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async Task<string> CreateTemplateAsync()
    {
        var name = string.Create(CultureInfo.InvariantCulture, $"orders_tmpl_{Environment.ProcessId}_{_lease}");
        // Migrations create cluster-wide roles and this creates the app login: one at a time per server.
        await using var connection = await LockMigrationsAsync();
        await DropAbandonedDatabasesAsync(connection);
        await ExecuteAsync(connection, $"CREATE DATABASE {Quote(name)} TEMPLATE template0 ENCODING 'UTF8'");
        try
        {
            await Task.Run(() => Migrator.Run(MigrationCommand.Migrate, ConnectionString(name)));
            await using (var template = new NpgsqlConnection(ConnectionString(name) + ";Pooling=false"))
            {
                await template.OpenAsync();
                await EnsureAppLoginAsync(template);
            }

            // CREATE DATABASE ... TEMPLATE fails while anyone is connected to the template: let no one.
            await ExecuteAsync(connection, $"ALTER DATABASE {Quote(name)} ALLOW_CONNECTIONS false");
        }
        catch
        {
            await ExecuteAsync(connection, $"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)");
            throw;
        }

        return name;
    }

    private static async Task EnsureAppLoginAsync(NpgsqlConnection template)
    {
        // An existing login is left as it is: on a shared server it may be a developer's, with its own password.
        const string ensureLogin = $"""
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{AppLogin}') THEN
                    CREATE ROLE {AppLogin} LOGIN NOINHERIT PASSWORD '{AppPassword}';
                END IF;
            END
            $$
            """;
        await ExecuteAsync(template, ensureLogin);

        // The schema's own grant function once the migrations define it; the plain grant until then.
        if (await ScalarAsync<bool>(template, "SELECT to_regprocedure('trading.grant_application_roles(text)') IS NOT NULL"))
        {
            await ScalarAsync<object>(template, "SELECT trading.grant_application_roles($1)", AppLogin);
        }
        else
        {
            await ExecuteAsync(template, $"GRANT orders_api, orders_maintenance TO {AppLogin}");
        }
    }

    /// <summary>Drops databases whose process no longer holds its lease (it died before dropping them).</summary>
    private static async Task DropAbandonedDatabasesAsync(NpgsqlConnection connection)
    {
        var names = new List<string>();
        await using (var command = new NpgsqlCommand("SELECT datname FROM pg_database", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                names.Add(reader.GetString(0));
            }
        }

        foreach (var name in names)
        {
            if (OwnedDatabase().Match(name) is not { Success: true } match
                || !await ScalarAsync<bool>(connection, "SELECT pg_try_advisory_lock($1, $2)", LeaseNamespace, int.Parse(match.Groups["lease"].Value, CultureInfo.InvariantCulture)))
            {
                continue;
            }

            try
            {
                TestLog.Write($"dropping {name}, left behind by a test process that ended");
                await ExecuteAsync(connection, $"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)");
            }
            finally
            {
                await ScalarAsync<object>(connection, "SELECT pg_advisory_unlock($1, $2)", LeaseNamespace, int.Parse(match.Groups["lease"].Value, CultureInfo.InvariantCulture));
            }
        }
    }

    // Best effort: vstest may kill its test host a moment after the last test. Servers of our own are stopped by
    // their watchdogs whatever happens; on a shared server, a template this misses is dropped by the next
    // process that creates one (see DropAbandonedDatabasesAsync).
    private void Shutdown()
    {
        try
        {
            if (_stopServer is null && _template.IsValueCreated && _template.Value.IsCompletedSuccessfully)
            {
                ExecuteAsync(_admin, $"DROP DATABASE IF EXISTS {Quote(_template.Value.Result)} WITH (FORCE)").Wait(TimeSpan.FromSeconds(10));
            }

            _leaseConnection.Dispose();
            _admin.Dispose();
        }
        catch (Exception e)
        {
            TestLog.Write($"PostgreSQL cleanup: {e.Message}");
        }

        _stopServer?.Invoke();
    }

    // Only names this library generates ever reach SQL text; quoting is belt and braces.
    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [GeneratedRegex(@"^orders_(tmpl|test)_[0-9]+_(?<lease>[0-9]+)(_[0-9]+)?$")]
    private static partial Regex OwnedDatabase();

#pragma warning disable CA2100 // Command texts are constants or built from generated identifiers only.
    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql, CancellationToken cancellationToken = default)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }
#pragma warning restore CA2100
}
