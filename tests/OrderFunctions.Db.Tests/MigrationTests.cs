using Dapper;
using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// The Evolve runner against a database of each test's own, created empty and dropped after. Each test holds the
/// server's migration lock, so that its migrations never run beside the template's (or the CLI test's).
/// </summary>
public sealed class MigrationTests : IAsyncLifetime
{
    private PostgresServer _server = null!;
    private NpgsqlConnection? _migrationLock;
    private string _database = "";

    // Unpooled: the database is dropped after each test and no pooled connection should outlive it.
    private string ConnectionString => _server.ConnectionString(_database) + ";Pooling=false";

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.GetAsync();
        _migrationLock = await _server.LockMigrationsAsync();
        _database = await _server.CreateDatabaseAsync(migrated: false);
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _server.DropDatabaseAsync(_database);
        }
        finally
        {
            if (_migrationLock is not null)
            {
                await _migrationLock.DisposeAsync();
            }
        }
    }

    [Fact]
    public void Every_migration_file_is_embedded_in_the_runner()
    {
        var directory = MigrationsDirectory();

        var files = Directory.GetFiles(directory, "*.sql").Select(Path.GetFileName).Order(StringComparer.Ordinal);

        Assert.Equal(files, Migrator.Scripts.Select(s => s.Name));
        Assert.Contains("V1_1__tables.sql", Migrator.Scripts.Select(s => s.Name));
    }

    [Fact]
    public async Task Migrate_brings_an_empty_database_to_the_head()
    {
        var report = Migrator.Run(MigrationCommand.Migrate, ConnectionString);

        Assert.Equal(Migrator.Scripts.Count, report.Applied);
        Assert.Equal(Migrator.Scripts.Select(s => s.Name), await AppliedScriptsAsync());
        Assert.Equal(HeadVersion(), await ScalarAsync<string>("SELECT version FROM evolve.changelog WHERE type = 0 AND success ORDER BY id DESC LIMIT 1"));
        Assert.True(await ScalarAsync<bool>("SELECT to_regprocedure('trading.execute_order(text, text, text, numeric, numeric, text, text, uuid, numeric, numeric, boolean)') IS NOT NULL"));
    }

    [Fact]
    public async Task A_second_migrate_applies_nothing()
    {
        Migrator.Run(MigrationCommand.Migrate, ConnectionString);
        var rows = await ScalarAsync<long>("SELECT count(*) FROM evolve.changelog");

        var again = Migrator.Run(MigrationCommand.Migrate, ConnectionString);

        Assert.Equal(0, again.Applied);
        Assert.Empty(again.AppliedScripts);
        Assert.Equal(rows, await ScalarAsync<long>("SELECT count(*) FROM evolve.changelog"));
    }

    [Fact]
    public async Task Validate_passes_on_a_migrated_database_and_fails_once_an_applied_script_changed()
    {
        Migrator.Run(MigrationCommand.Migrate, ConnectionString);
        Migrator.Run(MigrationCommand.Validate, ConnectionString);

        // What the changelog holds for V1_1 no longer matches the embedded text: the same as editing an applied script.
        Assert.Equal(1, await ExecuteAsync("UPDATE evolve.changelog SET checksum = 'D41D8CD98F00B204E9800998ECF8427E' WHERE name = 'V1_1__tables.sql'"));
        var e = Assert.Throws<MigrationException>(() => Migrator.Run(MigrationCommand.Validate, ConnectionString));

        Assert.StartsWith("validation failed", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task A_failing_script_is_reported_with_its_file_and_line()
    {
        // A table the migrations are about to create already exists: V1_1__tables.sql fails at CREATE TABLE instruments.
        await ExecuteAsync("CREATE SCHEMA trading; CREATE TABLE trading.instruments (symbol text PRIMARY KEY)");
        var script = Migrator.Scripts.Single(s => s.Name == "V1_1__tables.sql").Sql;
        var line = script[..script.IndexOf("CREATE TABLE instruments", StringComparison.Ordinal)].Count(c => c == '\n') + 1;

        var e = Assert.Throws<MigrationException>(() => Migrator.Run(MigrationCommand.Migrate, ConnectionString));

        Assert.Contains("42P07", e.Message, StringComparison.Ordinal);
        Assert.Contains($"V1_1__tables.sql:{line}:", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        // Each script commits alone: V1_0 stays applied, nothing of V1_1 does.
        Assert.Equal(["V1_0__roles_and_schemas.sql"], await AppliedScriptsAsync());
        Assert.False(await ScalarAsync<bool>("SELECT to_regclass('trading.orders') IS NOT NULL"));
    }

    [Fact]
    public void Run_rejects_a_connection_string_that_names_no_host()
    {
        var e = Assert.Throws<MigrationException>(() => Migrator.Run(MigrationCommand.Info, "Database=orders"));

        Assert.StartsWith("invalid connection string", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Repeating_the_maintenance_script_drops_the_retention_functions_old_names()
    {
        // A database migrated before the rename has audit_archive_rows and archive_audit_rows; R__07 runs again
        // (its checksum changed) and must not leave them callable beside the new names.
        Migrator.Run(MigrationCommand.Migrate, ConnectionString);
        await ExecuteAsync("""
            BEGIN;
            SET LOCAL ROLE orders_owner;
            CREATE FUNCTION trading.audit_archive_rows(text, bigint, timestamptz, integer) RETURNS TABLE (id bigint, line text)
                LANGUAGE sql AS 'SELECT 1::bigint, ''''::text';
            RESET ROLE;
            SET LOCAL ROLE orders_archiver;
            CREATE FUNCTION trading.archive_audit_rows(bigint, text, bigint, bigint, timestamptz, integer, text, text) RETURNS jsonb
                LANGUAGE sql AS 'SELECT ''{}''::jsonb';
            COMMIT;
            """);
        var script = Migrator.Scripts.Single(s => s.Name == "R__07_maintenance.sql").Sql;

        await ExecuteAsync("BEGIN;\n" + script + "\nCOMMIT;");

        Assert.Equal(["audit_rows_to_archive", "delete_archived_audit_rows"], await QueryNamesAsync("""
            SELECT proname FROM pg_proc
            WHERE pronamespace = 'trading'::regnamespace
              AND proname IN ('audit_archive_rows', 'archive_audit_rows', 'audit_rows_to_archive', 'delete_archived_audit_rows')
            ORDER BY proname
            """));
    }

    private async Task<List<string>> QueryNamesAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        return (await connection.QueryAsync<string>(sql)).AsList();
    }

    private async Task<List<string>> AppliedScriptsAsync()
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        return (await connection.QueryAsync<string>("SELECT name FROM evolve.changelog WHERE success AND name LIKE '%.sql'"))
            .Order(StringComparer.Ordinal).ToList();
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        return await connection.ExecuteScalarAsync<T>(sql) ?? throw new InvalidOperationException($"no value from {sql}");
    }

    private async Task<int> ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        return await connection.ExecuteAsync(sql);
    }

    /// <summary>The version of the last versioned script, as Evolve writes it: V1_1__tables.sql is 1.1.</summary>
    internal static string HeadVersion() => Migrator.Scripts
        .Where(s => s.Name.StartsWith('V'))
        .Select(s => s.Name[1..s.Name.IndexOf("__", StringComparison.Ordinal)].Replace('_', '.'))
        .MaxBy(v => Version.Parse(v.Contains('.', StringComparison.Ordinal) ? v : v + ".0"))!;

    internal static string MigrationsDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "db", "migrations");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException($"no db/migrations above {AppContext.BaseDirectory}");
    }
}
