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
}
