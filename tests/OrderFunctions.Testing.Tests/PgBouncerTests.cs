using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Testing.Tests;

/// <summary>The PgBouncer of the test infrastructure is a real one, in transaction pooling mode, in front of the test server.</summary>
public sealed class PgBouncerTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Shared_pgbouncer_is_a_real_pgbouncer_in_transaction_mode()
    {
        var bouncer = await PgBouncer.GetAsync();

        var config = (await bouncer.ShowAsync("SHOW CONFIG")).ToDictionary(r => r["key"], r => r["value"], StringComparer.Ordinal);

        Assert.StartsWith("PgBouncer ", bouncer.Version, StringComparison.Ordinal);
        Assert.Equal("transaction", config["pool_mode"]);
        Assert.Equal(PgBouncer.SharedPoolSize.ToString(System.Globalization.CultureInfo.InvariantCulture), config["default_pool_size"]);
    }

    [Fact]
    public async Task The_app_login_reaches_a_test_database_through_it()
    {
        var bouncer = await PgBouncer.GetAsync();
        await using var connection = new NpgsqlConnection(bouncer.AppConnectionString(database.DatabaseName) + ";Pooling=false");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_database()::text || ' ' || session_user::text", connection);

        Assert.Equal($"{database.DatabaseName} {PostgresServer.AppLogin}", await command.ExecuteScalarAsync());
        var pools = await bouncer.ShowAsync("SHOW POOLS");
        Assert.Contains(pools, p => p["database"] == database.DatabaseName && p["user"] == PostgresServer.AppLogin);
    }

    [Fact]
    public async Task With_a_pool_of_one_two_client_connections_share_one_server_connection()
    {
        var bouncer = await PgBouncer.StartAsync(poolSize: 1);
        try
        {
            await using var first = new NpgsqlConnection(bouncer.AppConnectionString(database.DatabaseName) + ";Pooling=false");
            await using var second = new NpgsqlConnection(bouncer.AppConnectionString(database.DatabaseName) + ";Pooling=false");
            await first.OpenAsync();
            await second.OpenAsync();

            var pids = new List<object?>();
            foreach (var connection in new[] { first, second, first, second })
            {
                await using var command = new NpgsqlCommand("SELECT pg_backend_pid()", connection);
                pids.Add(await command.ExecuteScalarAsync());
            }

            Assert.Single(pids.Distinct());
        }
        finally
        {
            bouncer.Stop();
        }
    }
}
