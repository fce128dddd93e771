using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Testing;

namespace OrderFunctions.Reliability.Tests;

/// <summary>
/// OrdersDatabase's contract for a backend that dies mid-call (DESIGN.md §5): a repeatable call is retried, a
/// non-repeatable one ends in <see cref="OutcomeUnknownException"/>. The backend is terminated at a chosen moment:
/// after the first row of a result has reached the client and while the next row is being computed, which is
/// where the load test of <see cref="OrdersUnderFaultsTests"/> first caught it at random.
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
            orders.QueryAsync(DbRole.Maintenance, null, StreamingSql, new { Lock = lockKey }, Repeatable.No,
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
            rows = await orders.QueryAsync(DbRole.Maintenance, null, StreamingSql, new { Lock = lockKey }, Repeatable.Yes,
                async grid => (await grid.ReadAsync<int>()).ToList(), CancellationToken.None));

        Assert.Null(error);
        Assert.Equal([1, 2], rows);
    }

    private OrdersDatabase CreateOrdersDatabase()
    {
        var settings = new DatabaseSettings { ConnectionString = database.AppConnectionString, MaxRetries = 3 };
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
