using Dapper;
using Npgsql;
using Xunit;

namespace OrderFunctions.Testing;

/// <summary>
/// An xunit class fixture: a database of its own, cloned from the migrated template when the class starts
/// and dropped when it ends, so test classes never see each other's rows and may run in parallel.
/// </summary>
public class DatabaseFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    // Tests read snake_case columns into C# records, as OrdersDatabase does for the product; every test that
    // reads rows has a fixture, so this is where the tests set Dapper's convention.
    static DatabaseFixture() => DefaultTypeMap.MatchNamesWithUnderscores = true;

    public string DatabaseName { get; private set; } = "";

    /// <summary>Superuser on this fixture's database: for arranging and inspecting, bypassing row-level security.</summary>
    public string AdminConnectionString { get; private set; } = "";

    /// <summary>The application's login (<see cref="PostgresServer.AppLogin"/>) on this fixture's database.</summary>
    public string AppConnectionString { get; private set; } = "";

    public virtual async Task InitializeAsync()
    {
        _server = await PostgresServer.GetAsync();
        DatabaseName = await _server.CreateDatabaseAsync();
        AdminConnectionString = _server.ConnectionString(DatabaseName);
        AppConnectionString = _server.AppConnectionString(DatabaseName);
    }

    public virtual async Task DisposeAsync()
    {
        if (_server is null || DatabaseName.Length == 0)
        {
            return;
        }

        // Connections pooled for this database would outlive it as broken entries.
        foreach (var connectionString in new[] { AdminConnectionString, AppConnectionString })
        {
            await using var connection = new NpgsqlConnection(connectionString);
            NpgsqlConnection.ClearPool(connection);
        }

        await _server.DropDatabaseAsync(DatabaseName);
    }

    public async Task<NpgsqlConnection> OpenAdminConnectionAsync(CancellationToken cancellationToken = default)
    {
        var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    public async Task<NpgsqlConnection> OpenAppConnectionAsync(CancellationToken cancellationToken = default)
    {
        var connection = new NpgsqlConnection(AppConnectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    /// <summary>Runs one statement as admin; <paramref name="parameters"/> bind to $1, $2, ...</summary>
    public async Task<int> AdminExecuteAsync(string sql, params object?[] parameters)
    {
        await using var connection = await OpenAdminConnectionAsync();
        await using var command = CreateCommand(connection, sql, parameters);
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>The first column of the first row as admin (default when there is no row or it is NULL); parameters bind to $1, $2, ...</summary>
    public async Task<T?> AdminScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var connection = await OpenAdminConnectionAsync();
        await using var command = CreateCommand(connection, sql, parameters);
        return await command.ExecuteScalarAsync() is { } value and not DBNull ? (T)value : default;
    }

    /// <summary>
    /// Waits until at least <paramref name="count"/> backends of this database whose query contains
    /// <paramref name="queryPart"/> wait on a lock (on <paramref name="waitEvent"/> when given: pg_stat_activity's
    /// wait_event, e.g. "advisory" or "transactionid"); fails if <paramref name="call"/> ends first, or after 10 s.
    /// </summary>
    public async Task WaitUntilWaitingOnALockAsync(string queryPart, Task call, string? waitEvent = null, long count = 1)
    {
        for (var i = 0; i < 400; i++)
        {
            Assert.False(call.IsCompleted, $"{queryPart} did not wait: {(call.IsCompletedSuccessfully ? "it finished" : call.Exception?.Message)}");
            var waiting = await AdminScalarAsync<long>(
                $"SELECT count(*) {Backends} AND wait_event_type = 'Lock' AND ($2::text IS NULL OR wait_event = $2::text)", queryPart, waitEvent);
            if (waiting >= count)
            {
                return;
            }

            await Task.Delay(25);
        }

        var events = await AdminScalarAsync<string>($"SELECT string_agg(coalesce(wait_event, 'running'), ', ') {Backends}", queryPart);
        Assert.Fail($"never {count} backends running {queryPart} waiting on {waitEvent ?? "a lock"}; they wait on: {events ?? "nothing"}");
    }

    /// <summary>
    /// Waits until no backend of this database runs a query that contains <paramref name="queryPart"/>; fails after 10 s
    /// with <paramref name="why"/>.
    /// </summary>
    public async Task WaitUntilNoBackendRunsAsync(string queryPart, string why)
    {
        for (var i = 0; i < 400; i++)
        {
            if (await AdminScalarAsync<long>($"SELECT count(*) {Backends} AND state = 'active'", queryPart) == 0)
            {
                return;
            }

            await Task.Delay(25);
        }

        Assert.Fail($"a backend still runs {queryPart} after 10 s: {why}");
    }

    // The other backends of this database whose query contains $1.
    private const string Backends =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'";

    /// <summary>
    /// Makes every order insert for <paramref name="user"/> fail (a trigger standing in for whatever makes one
    /// account's writes fail: bad data, a bug) until the result is disposed.
    /// </summary>
    public async Task<IAsyncDisposable> RefuseOrdersOfAsync(Guid user)
    {
        var name = "refuse_orders_" + user.ToString("N");
        await AdminExecuteAsync(
            $"CREATE FUNCTION public.{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$");
        await AdminExecuteAsync(
            $"CREATE TRIGGER {name} BEFORE INSERT ON trading.orders FOR EACH ROW WHEN (NEW.user_id = '{user}') EXECUTE FUNCTION public.{name}()");
        return new Refusal(this, name);
    }

    private sealed class Refusal(DatabaseFixture database, string name) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await database.AdminExecuteAsync($"DROP TRIGGER IF EXISTS {name} ON trading.orders");
            await database.AdminExecuteAsync($"DROP FUNCTION IF EXISTS public.{name}()");
        }
    }

#pragma warning disable CA2100 // Tests pass constant SQL; values travel as parameters.
    private static NpgsqlCommand CreateCommand(NpgsqlConnection connection, string sql, object?[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }

        return command;
    }
#pragma warning restore CA2100
}
