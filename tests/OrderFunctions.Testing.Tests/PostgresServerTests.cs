using System.Globalization;
using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Testing.Tests;

public sealed class PostgresServerTests
{
    [Fact]
    public async Task Unmigrated_database_has_no_schema_when_asked_for()
    {
        var server = await PostgresServer.GetAsync();
        var name = await server.CreateDatabaseAsync(migrated: false);
        try
        {
            await using var connection = new NpgsqlConnection(server.ConnectionString(name) + ";Pooling=false");
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT to_regnamespace('trading') IS NULL AND to_regnamespace('evolve') IS NULL", connection);

            Assert.Equal(true, await command.ExecuteScalarAsync());
        }
        finally
        {
            await server.DropDatabaseAsync(name);
        }
    }

    [Fact]
    public async Task Drop_database_refuses_a_name_it_did_not_generate()
    {
        var server = await PostgresServer.GetAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => server.DropDatabaseAsync("postgres"));
    }

    [Fact]
    public async Task Template_accepts_no_connections_once_migrated()
    {
        var server = await PostgresServer.GetAsync();
        await server.DropDatabaseAsync(await server.CreateDatabaseAsync()); // the template exists from here on

        await using var connection = new NpgsqlConnection(server.AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname LIKE 'orders\\_tmpl\\_' || $1 || '\\_%' AND NOT datallowconn", connection)
        {
            Parameters = { new() { Value = Environment.ProcessId.ToString(CultureInfo.InvariantCulture) } },
        };

        Assert.Equal(1L, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_second_migration_lock_waits_until_the_first_is_let_go()
    {
        var server = await PostgresServer.GetAsync();
        var first = await server.LockMigrationsAsync();

        var second = server.LockMigrationsAsync();
        await using var admin = new NpgsqlConnection(server.AdminConnectionString + ";Pooling=false");
        await admin.OpenAsync();
        await using var waiting = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'OrderFunctions.Testing migration lock' AND wait_event = 'advisory'", admin);
        for (var i = 0; i < 400 && (long)(await waiting.ExecuteScalarAsync())! == 0; i++)
        {
            Assert.False(second.IsCompleted, "the second migration lock was taken while the first was held");
            await Task.Delay(25);
        }

        Assert.False(second.IsCompleted, "the second migration lock was taken while the first was held");
        Assert.Equal(1L, await waiting.ExecuteScalarAsync());
        await first.DisposeAsync();
        await using var taken = await second.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
