using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// How the money functions lock the account row. Orders first wait for the account's turn (wait_for_account_turn, an
/// advisory lock that queues them in arrival order), then take the row lock. execute_order and rollback_order_execution take their row
/// locks inside their exception block: a lock taken outside it, followed by the block's foreign-key checks and
/// UPDATE under the block's own subtransaction id, turns the row's xmax into a MultiXact on every call, which
/// every later locker of that account must read back (GetMultiXactIdMembers was 15% of PostgreSQL's CPU with
/// eight clients on one account; without the MultiXacts pgbench on one account ran 762 and 811 tps against 591
/// and 695). Read from the heap pages themselves with pageinspect.
/// </summary>
public sealed class RowLockTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    // HEAP_XMAX_IS_MULTI in t_infomask (src/include/access/htup_details.h).
    private const int XmaxIsMulti = 0x1000;

    private readonly Trading _trading = new(database);

    [Fact]
    public async Task An_order_and_its_rollback_leave_no_multixact_on_the_account_row()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);

        var order = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var rollback = await _trading.RollbackAsync(user, order.Guid("order_id"));

        Assert.True(rollback.Success, rollback.Json);
        var versions = await AccountRowVersionsAsync(user);
        // The deposit's row, the order's and the rollback's: two superseded versions that could carry a MultiXact.
        Assert.True(versions.Count >= 3, $"expected at least 3 versions of the account row, found {versions.Count}");
        Assert.All(versions, v => Assert.True((v.Infomask & XmaxIsMulti) == 0,
            $"account row version at lp {v.Lp} (xmin {v.Xmin}) has a MultiXact xmax {v.Xmax}"));
    }

    [Fact]
    public async Task Orders_for_one_account_wait_for_their_turn_in_arrival_order()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);

        // Another writer holds the account row: the first order takes the account's turn and waits on the row.
        await using var holder = await database.OpenAdminConnectionAsync();
        await using var holding = await holder.BeginTransactionAsync();
        await holder.ExecuteAsync("SELECT 1 FROM trading.accounts WHERE user_id = @user FOR UPDATE", new { user }, holding);
        var first = _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1m, key: "first");
        await database.WaitUntilWaitingOnALockAsync("execute_order", first, "transactionid");

        // The next ones queue for the turn (the advisory lock), not on the row, where one that came later could
        // take the row ahead of them when it comes free.
        var second = _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 2m, key: "second");
        await database.WaitUntilWaitingOnALockAsync("execute_order", second, "advisory");
        var third = _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 3m, key: "third");
        await database.WaitUntilWaitingOnALockAsync("execute_order", third, "advisory", count: 2);
        await holding.CommitAsync();

        var responses = await Task.WhenAll(first, second, third);
        Assert.All(responses, r => Assert.True(r.Success, r.Json));
        var logs = await _trading.ExecutionLogsAsync(user);
        Assert.Equal(responses.Select(r => r.Guid("order_id")), logs.Select(l => l.OrderId));
    }

    /// <summary>Every version of the trader's account row still on the heap pages, as pageinspect reads them.</summary>
    private async Task<List<RowVersion>> AccountRowVersionsAsync(Guid user)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await connection.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS pageinspect");
        var rows = await connection.QueryAsync<RowVersion>(
            """
            SELECT p.lp::int AS Lp, p.t_xmin::text AS Xmin, p.t_xmax::text AS Xmax, p.t_infomask AS Infomask
            FROM generate_series(0, (pg_relation_size('trading.accounts') / current_setting('block_size')::int)::int - 1) AS block,
                 heap_page_items(get_raw_page('trading.accounts', block)) AS p
            WHERE p.t_data IS NOT NULL AND substring(p.t_data FROM 1 FOR 16) = uuid_send(@user)
            """, new { user });
        return rows.ToList();
    }

    private sealed record RowVersion(int Lp, string Xmin, string Xmax, int Infomask);
}
