using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Testing.Tests;

/// <summary>The proxy itself: it forwards faithfully, and each fault does exactly what the tests that use it rely on.</summary>
public sealed class PostgresProxyTests(DatabaseFixture fixture) : IClassFixture<DatabaseFixture>
{
    [Fact]
    public async Task Proxy_forwards_queries_both_ways_when_no_fault_is_armed()
    {
        await using var proxy = PostgresProxy.Start(fixture.AdminConnectionString);

        Assert.Equal(42, await ScalarAsync<int>(proxy.ConnectionString, "SELECT 42"));
        Assert.Equal(0, proxy.LostReplies);
    }

    [Fact]
    public async Task A_dropped_reply_comes_after_the_commit_and_the_client_sees_its_connection_fail()
    {
        await fixture.AdminExecuteAsync("CREATE TABLE IF NOT EXISTS public.proxy_dropped (n int)");
        await using var proxy = PostgresProxy.Start(fixture.AdminConnectionString);
        proxy.LoseReplies("proxy_dropped", ReplyFault.Drop);

        var error = await Record.ExceptionAsync(() => ScalarAsync<int>(proxy.ConnectionString, "INSERT INTO public.proxy_dropped VALUES (1) RETURNING n"));

        Assert.IsAssignableFrom<NpgsqlException>(error);
        Assert.Equal(1, proxy.LostReplies);
        Assert.Equal(1L, await fixture.AdminScalarAsync<long>("SELECT count(*) FROM public.proxy_dropped"));
    }

    [Fact]
    public async Task A_restart_refuses_new_connections_with_57P03_until_it_is_over()
    {
        await using var proxy = PostgresProxy.Start(fixture.AdminConnectionString);
        proxy.Restart(TimeSpan.FromMinutes(5));

        var refused = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync<int>(proxy.ConnectionString, "SELECT 1"));
        proxy.Resume();

        Assert.Equal("57P03", refused.SqlState);
        Assert.Equal(1, await ScalarAsync<int>(proxy.ConnectionString, "SELECT 1"));
    }

    [Fact]
    public async Task Stalled_new_connections_never_open_while_an_open_one_keeps_working()
    {
        await using var proxy = PostgresProxy.Start(fixture.AdminConnectionString);
        await using var open = new NpgsqlConnection(proxy.ConnectionString + ";Pooling=false");
        await open.OpenAsync();
        proxy.StallNewConnections();

        await using var stalled = new NpgsqlConnection(proxy.ConnectionString + ";Pooling=false;Timeout=1");
        var error = await Record.ExceptionAsync(() => stalled.OpenAsync());
        await using var command = new NpgsqlCommand("SELECT 7", open);

        Assert.IsAssignableFrom<NpgsqlException>(error);
        Assert.Equal(7, (int)(await command.ExecuteScalarAsync())!);
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString + ";Pooling=false");
        await connection.OpenAsync();
#pragma warning disable CA2100 // Constant test texts.
        await using var command = new NpgsqlCommand(sql, connection);
#pragma warning restore CA2100
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
