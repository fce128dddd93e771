using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Testing;

namespace OrderFunctions.Reliability.Tests;

/// <summary>
/// OrdersDatabase's contract for calls whose answer does not come back: a read or an idempotent write is retried,
/// another write ends in <see cref="OutcomeUnknownException"/>; a cancellation the server confirms is a timeout that
/// changed nothing, one it never confirms is an unknown outcome for a write. The backend is terminated at a chosen
/// moment (after the first row of a result has reached the client, while the next is computed: where the load test
/// of <see cref="OrdersUnderFaultsTests"/> first caught it at random), or a <see cref="PostgresProxy"/> holds or
/// drops its reply or plays a restart.
/// </summary>
public sealed class ConnectionLossTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    // Returns its argument; on the second row it flushes the first to the client (a NOTICE flushes the output
    // buffer) and then waits for an advisory lock the test holds, so the backend is terminated mid-result.
    private const string HelperSql = """
        CREATE OR REPLACE FUNCTION public.reliability_second_row_waits(p_row int, p_lock bigint) RETURNS int
            LANGUAGE plpgsql
        AS $$
        BEGIN
            IF p_row = 2 THEN
                RAISE NOTICE 'first row sent; waiting for lock %', p_lock;
                PERFORM pg_advisory_lock(p_lock);
                PERFORM pg_advisory_unlock(p_lock);
            END IF;
            RETURN p_row;
        END
        $$;
        GRANT EXECUTE ON FUNCTION public.reliability_second_row_waits(int, bigint) TO PUBLIC;

        -- Waits, in the server, for the condition itself (a backend of the login blocked on an advisory lock in
        -- this database), then terminates it. Bounded: false when no backend got there in time.
        CREATE OR REPLACE FUNCTION public.reliability_terminate_lock_waiter(p_login text, p_timeout interval) RETURNS boolean
            LANGUAGE plpgsql
        AS $$
        DECLARE
            v_deadline timestamptz := clock_timestamp() + p_timeout;
            v_pid int;
        BEGIN
            LOOP
                PERFORM pg_stat_clear_snapshot();
                SELECT pid INTO v_pid FROM pg_stat_activity
                WHERE datname = current_database() AND usename = p_login AND wait_event_type = 'Lock' AND wait_event = 'advisory';
                IF FOUND THEN
                    RETURN pg_terminate_backend(v_pid);
                ELSIF clock_timestamp() > v_deadline THEN
                    RETURN false;
                END IF;
                PERFORM pg_sleep(0.005);
            END LOOP;
        END
        $$;
        """;

    private const string StreamingSql = "SELECT public.reliability_second_row_waits(g, @Lock) FROM generate_series(1, 2) g";

    public async Task InitializeAsync() => await database.AdminExecuteAsync(HelperSql);

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_non_repeatable_call_reports_an_unknown_outcome_when_its_backend_dies_mid_result()
    {
        await using var orders = CreateOrdersDatabase();
        var lockKey = Random.Shared.NextInt64(1, long.MaxValue);

        var error = await KillMidResultAsync(lockKey, () =>
            orders.QueryAsync(DbRole.Maintenance, null, StreamingSql, new { Lock = lockKey }, Writes.NotIdempotently,
                async grid => (await grid.ReadAsync<int>()).ToList(), CancellationToken.None));

        // A deposit or a rollback in flight may or may not have committed: the caller must be told exactly that,
        // not "an unexpected error occurred; nothing was changed".
        Assert.IsType<OutcomeUnknownException>(error);
    }

    [Fact]
    public async Task A_repeatable_call_is_retried_when_its_backend_dies_mid_result()
    {
        await using var orders = CreateOrdersDatabase();
        var lockKey = Random.Shared.NextInt64(1, long.MaxValue);
        List<int>? rows = null;

        var error = await KillMidResultAsync(lockKey, async () =>
            rows = await orders.QueryAsync(DbRole.Maintenance, null, StreamingSql, new { Lock = lockKey }, Writes.Nothing,
                async grid => (await grid.ReadAsync<int>()).ToList(), CancellationToken.None));

        Assert.Null(error);
        Assert.Equal([1, 2], rows);
    }

    [Theory]
    [InlineData(Writes.Nothing)]
    [InlineData(Writes.NotIdempotently)]
    public async Task A_statement_the_server_cancels_at_the_command_timeout_is_a_timeout_that_changed_nothing(Writes writes)
    {
        // Npgsql sends a cancellation at the timeout and PostgreSQL confirms it (57014): the transaction rolled back.
        await using var orders = CreateOrdersDatabase(database.AppConnectionString, commandTimeoutSeconds: 1);

        var error = await Record.ExceptionAsync(() => orders.QueryAsync(DbRole.Maintenance, null, "SELECT pg_sleep(30)", null, writes,
            grid => grid.ReadAsync<object>(), CancellationToken.None));

        Assert.IsType<DatabaseTimeoutException>(error);
    }

    [Theory]
    [InlineData(Writes.Idempotently, true)]
    [InlineData(Writes.NotIdempotently, false)]
    public async Task A_write_whose_answer_never_comes_within_the_command_timeout_has_an_unknown_outcome(Writes writes, bool repeatIsSafe)
    {
        // The server ran it; the proxy holds its answer, so the client times out and the server never confirms a cancellation.
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var orders = CreateOrdersDatabase(proxy.ConnectionString + ";Cancellation Timeout=200", commandTimeoutSeconds: 1);
        proxy.LoseReplies("reliability_held_write", ReplyFault.Hold);

        var error = await Record.ExceptionAsync(() => orders.QueryAsync(DbRole.Maintenance, null, "SELECT 'reliability_held_write'", null, writes,
            grid => grid.ReadAsync<string>(), CancellationToken.None));

        var unknown = Assert.IsType<OutcomeUnknownException>(error);
        Assert.Equal(repeatIsSafe, unknown.RepeatIsSafe);
        Assert.Equal(1, proxy.LostReplies);
    }

    [Fact]
    public async Task A_read_whose_answer_never_comes_within_the_command_timeout_is_a_timeout()
    {
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var orders = CreateOrdersDatabase(proxy.ConnectionString + ";Cancellation Timeout=200", commandTimeoutSeconds: 1);
        proxy.LoseReplies("reliability_held_read", ReplyFault.Hold);

        var error = await Record.ExceptionAsync(() => orders.QueryAsync(DbRole.Maintenance, null, "SELECT 'reliability_held_read'", null, Writes.Nothing,
            grid => grid.ReadAsync<string>(), CancellationToken.None));

        Assert.IsType<DatabaseTimeoutException>(error);
    }

    [Fact]
    public async Task A_repeatable_write_rides_out_a_server_restart_and_then_succeeds()
    {
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var orders = CreateOrdersDatabase(proxy.ConnectionString, commandTimeoutSeconds: 15, maxRetries: 8);
        proxy.LoseReplies("reliability_restart", ReplyFault.Drop, thenRestartFor: TimeSpan.FromMilliseconds(800));

        var answer = await orders.QueryAsync(DbRole.Maintenance, null, "SELECT 'reliability_restart'", null, Writes.Idempotently,
            grid => grid.ReadSingleAsync<string>(), CancellationToken.None);

        Assert.Equal("reliability_restart", answer);
        Assert.Equal(1, proxy.LostReplies);
    }

    [Fact]
    public void Retries_wait_long_enough_in_all_to_ride_out_a_server_restart()
    {
        // PostgreSQL needs about 0.5 s to recover from a crash here; the default retries must wait longer than that
        // even when every jittered wait comes out at its shortest.
        var shortest = Enumerable.Range(0, new DatabaseSettings { ConnectionString = "" }.MaxRetries)
            .Sum(attempt => Enumerable.Range(0, 200).Min(_ => OrdersDatabase.RetryDelay(attempt).TotalMilliseconds));

        Assert.True(shortest >= 1500, $"the default retries wait at least {shortest} ms in all");
    }

    private OrdersDatabase CreateOrdersDatabase() => CreateOrdersDatabase(database.AppConnectionString, 15, maxRetries: 3);

    private static OrdersDatabase CreateOrdersDatabase(string connectionString, int commandTimeoutSeconds, int maxRetries = 0)
    {
        var settings = new DatabaseSettings { ConnectionString = connectionString, MaxRetries = maxRetries, CommandTimeoutSeconds = commandTimeoutSeconds };
        return new OrdersDatabase(OrdersDatabase.CreateDataSource(settings), settings, NullLogger<OrdersDatabase>.Instance);
    }

    /// <summary>
    /// Holds the advisory lock, starts <paramref name="call"/>, terminates its backend once it waits for the
    /// lock (after its first row went out), releases the lock and returns what the call threw, if anything.
    /// </summary>
    private async Task<Exception?> KillMidResultAsync(long lockKey, Func<Task> call)
    {
        await using var holder = await database.OpenAdminConnectionAsync();
        await holder.ExecuteAsync("SELECT pg_advisory_lock(@lockKey)", new { lockKey });
        var running = call();

        await using (var killer = await database.OpenAdminConnectionAsync())
        {
            Assert.True(await killer.ExecuteScalarAsync<bool>("SELECT public.reliability_terminate_lock_waiter(@login, '30 seconds')",
                new { login = PostgresServer.AppLogin }), "the call never reached its second row");
        }

        await holder.ExecuteAsync("SELECT pg_advisory_unlock(@lockKey)", new { lockKey });
        try
        {
            await running;
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }
}
