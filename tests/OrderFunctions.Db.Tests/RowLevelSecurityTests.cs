using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>Tenant isolation by row-level security: a trader's context sees and changes only that trader's rows.</summary>
public sealed class RowLevelSecurityTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Theory]
    [InlineData("SELECT count(*) FROM trading.accounts WHERE user_id = @user")]
    [InlineData("SELECT count(*) FROM trading.orders WHERE user_id = @user")]
    [InlineData("SELECT count(*) FROM trading.positions WHERE user_id = @user")]
    [InlineData("SELECT count(*) FROM trading.fills WHERE user_id = @user")]
    public async Task Api_role_sees_the_acting_traders_rows_and_none_of_another_traders(string count)
    {
        var (a, b) = await ArrangeTwoTradersAsync();

        var own = await CountAsAsync(Trading.Api, a, count, a);
        var others = await CountAsAsync(Trading.Api, a, count, b);
        // The same count with no filter at all: everything the policy lets through is the trader's own.
        var unfiltered = await CountAsAsync(Trading.Api, a, count.Replace("user_id = @user", "@user IS NOT NULL", StringComparison.Ordinal), b);

        Assert.True(own > 0, "the acting trader's own rows must be visible");
        Assert.Equal(0, others);
        Assert.Equal(own, unfiltered);
    }

    [Theory]
    [InlineData("UPDATE trading.accounts SET balance = balance + 1 WHERE user_id = @user")]
    [InlineData("UPDATE trading.orders SET failure_reason = 'x' WHERE user_id = @user")]
    [InlineData("DELETE FROM trading.fills WHERE user_id = @user")]
    [InlineData("UPDATE trading.positions SET quantity = quantity + 1 WHERE user_id = @user")]
    [InlineData("INSERT INTO trading.strategies (user_id, name) VALUES (@user, 'mine')")]
    public async Task Api_role_cannot_write_tenant_tables_even_its_own_rows(string write)
    {
        var (a, _) = await ArrangeTwoTradersAsync();

        var e = await Assert.ThrowsAsync<PostgresException>(() =>
            _trading.InTransactionAsync(Trading.Api, a, (c, t) => c.ExecuteAsync(new CommandDefinition(write, new { user = a }, t))));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
        Assert.StartsWith("permission denied", e.MessageText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("UPDATE trading.accounts SET balance = balance + 1 WHERE user_id = @user")]
    [InlineData("UPDATE trading.orders SET failure_reason = 'x' WHERE user_id = @user")]
    [InlineData("UPDATE trading.positions SET stop_loss = 1 WHERE user_id = @user")]
    [InlineData("DELETE FROM trading.fills WHERE user_id = @user")]
    public async Task Owner_role_in_one_traders_context_changes_none_of_another_traders_rows(string write)
    {
        var (a, b) = await ArrangeTwoTradersAsync();
        var before = await _trading.CountsAsync(b);
        var account = await _trading.AccountSnapshotAsync(b);

        var others = await AsOwnerAsync(a, write, b);
        var own = await AsOwnerAsync(a, write, a);

        Assert.Equal(0, others);
        Assert.True(own > 0, "the same statement must reach the acting trader's own rows");
        Assert.Equal(before, await _trading.CountsAsync(b));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(b));
    }

    [Fact]
    public async Task Owner_role_cannot_insert_a_row_for_another_trader()
    {
        var (a, b) = await ArrangeTwoTradersAsync();

        var e = await Assert.ThrowsAsync<PostgresException>(() =>
            AsOwnerAsync(a, "INSERT INTO trading.strategies (user_id, name) VALUES (@user, 'planted')", b));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
        Assert.Contains("row-level security", e.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_order_writes_only_for_the_trader_in_the_context()
    {
        var (a, b) = await ArrangeTwoTradersAsync();
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var before = await _trading.CountsAsync(b);
        var account = await _trading.AccountSnapshotAsync(b);

        var response = await _trading.ExecuteOrderAsync(a, instrument.Symbol, "buy", 1m);

        Assert.True(response.Success, response.Json);
        Assert.Equal(a, (await _trading.AdminAsync(c => c.QuerySingleAsync<Guid>(
            "SELECT user_id FROM trading.orders WHERE id = @id", new { id = response.Guid("order_id") }))));
        Assert.Equal(before, await _trading.CountsAsync(b));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(b));
    }

    [Fact]
    public async Task Execute_order_without_an_acting_trader_writes_nothing()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var orders = await _trading.AdminAsync(c => c.ExecuteScalarAsync<long>("SELECT count(*) FROM trading.orders"));

        var response = await _trading.CallAsync(Trading.Api, null, Trading.ExecuteOrderSql,
            Trading.OrderParameters(instrument.Symbol, "buy", 1m, "market", null, Guid.NewGuid().ToString(), null));

        Assert.Equal(("USER_NOT_FOUND", 404), (response.ErrorCode, response.Status));
        Assert.Equal(orders, await _trading.AdminAsync(c => c.ExecuteScalarAsync<long>("SELECT count(*) FROM trading.orders")));
    }

    [Fact]
    public async Task Maintenance_role_sees_every_trader()
    {
        var (a, b) = await ArrangeTwoTradersAsync();

        var traders = await _trading.InTransactionAsync(Trading.Maintenance, null, async (c, t) => (await c.QueryAsync<Guid>(new CommandDefinition(
            "SELECT DISTINCT user_id FROM trading.orders WHERE user_id IN (@a, @b)", new { a, b }, t))).ToHashSet());
        var fills = await _trading.InTransactionAsync(Trading.Maintenance, a, (c, t) => c.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM trading.fills WHERE user_id = @b", new { b }, t)));

        Assert.Equal(new HashSet<Guid> { a, b }, traders);
        Assert.Equal(1, fills);
    }

    [Fact]
    public async Task Rollback_in_one_traders_context_cannot_reach_another_traders_order()
    {
        var (a, b) = await ArrangeTwoTradersAsync();
        var order = Assert.Single(await _trading.OrdersAsync(b));

        var response = await _trading.RollbackAsync(a, order.Id);

        Assert.Equal(("ORDER_NOT_FOUND", 404), (response.ErrorCode, response.Status));
        Assert.Equal("executed", (await _trading.OrderAsync(b, order.Id)).Status);
    }

    /// <summary>Two funded traders with one executed order each.</summary>
    private async Task<(Guid A, Guid B)> ArrangeTwoTradersAsync()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var a = await _trading.NewTraderAsync(1_000m);
        var b = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(a, instrument.Symbol, "buy", 1m);
        await _trading.ExecutedOrderAsync(b, instrument.Symbol, "sell", 1m);
        return (a, b);
    }

    private Task<long> CountAsAsync(string role, Guid actingUser, string sql, Guid user) =>
        _trading.InTransactionAsync(role, actingUser, (c, t) => c.ExecuteScalarAsync<long>(new CommandDefinition(sql, new { user }, t)));

    /// <summary>A write as the tables' owner in <paramref name="actingUser"/>'s context, rolled back: returns the rows it reached.</summary>
    private async Task<int> AsOwnerAsync(Guid actingUser, string sql, Guid user)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(new CommandDefinition(
            "SELECT set_config('role', 'orders_owner', true), set_config('app.user_id', @actingUser, true)", new { actingUser = actingUser.ToString() }, transaction));
        var changed = await connection.ExecuteAsync(new CommandDefinition(sql, new { user }, transaction));
        await transaction.RollbackAsync();
        return changed;
    }
}
