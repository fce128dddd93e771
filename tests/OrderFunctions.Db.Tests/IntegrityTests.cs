using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// trading.validate_atomic_execution_integrity on good data, and on data an admin tampered with behind the
/// triggers' back (session_replication_role = replica): it names the check that fails, and only that one.
/// </summary>
public sealed class IntegrityTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private static readonly string[] CheckNames =
        ["order_state", "fill_matches_order", "position_link", "audit_matches_order", "execution_log", "hash_chain", "audit_chain", "account_matches_ledger",
         "write_off_matches_order"];

    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Integrity_check_passes_every_check_for_an_executed_order()
    {
        var (user, executed) = await ArrangeExecutedOrderAsync();

        var response = await _trading.IntegrityAsync(user, executed.Guid("transaction_id"));

        Assert.True(response.Success, response.Json);
        Assert.Equal(CheckNames, Checks(response).Select(c => c.Name));
        Assert.DoesNotContain(Checks(response), c => !c.Passed);
        Assert.True(response.Bool("valid"));
        Assert.Equal(executed.Guid("order_id"), response.Guid("order_id"));
    }

    [Fact]
    public async Task Integrity_check_passes_for_a_rejected_order()
    {
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1m);
        var rejected = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1m);

        var response = await _trading.IntegrityAsync(user, rejected.Guid("transaction_id"));

        Assert.Equal("rejected", response.String("order_status"));
        Assert.True(response.Bool("valid"), response.Json);
    }

    [Fact]
    public async Task Integrity_check_names_fill_matches_order_when_a_fill_price_was_changed()
    {
        var (user, executed) = await ArrangeExecutedOrderAsync();

        await TamperAsync("UPDATE trading.fills SET price = price + 1 WHERE user_id = @user AND order_id = @order", user, executed.Guid("order_id"));
        var response = await _trading.IntegrityAsync(user, executed.Guid("transaction_id"));

        Assert.False(response.Bool("valid"));
        Assert.Equal(["fill_matches_order"], Checks(response).Where(c => !c.Passed).Select(c => c.Name));
    }

    [Fact]
    public async Task Integrity_check_names_hash_chain_when_an_execution_log_reason_was_changed()
    {
        var (user, executed) = await ArrangeExecutedOrderAsync();

        await TamperAsync("UPDATE trading.execution_logs SET reason = 'nothing happened' WHERE user_id = @user AND order_id = @order", user, executed.Guid("order_id"));
        var response = await _trading.IntegrityAsync(user, executed.Guid("transaction_id"));

        Assert.False(response.Bool("valid"));
        Assert.Equal(["hash_chain"], Checks(response).Where(c => !c.Passed).Select(c => c.Name));
    }

    [Fact]
    public async Task Integrity_check_names_account_matches_ledger_when_a_balance_was_changed_without_triggers()
    {
        var (user, executed) = await ArrangeExecutedOrderAsync();

        await TamperAsync("UPDATE trading.accounts SET balance = balance + 1000 WHERE user_id = @user AND @order IS NOT NULL", user, executed.Guid("order_id"));
        var response = await _trading.IntegrityAsync(user, executed.Guid("transaction_id"));

        Assert.False(response.Bool("valid"));
        Assert.Equal(["account_matches_ledger"], Checks(response).Where(c => !c.Passed).Select(c => c.Name));
    }

    [Fact]
    public async Task Integrity_check_passes_for_a_close_with_a_write_off_and_names_write_off_matches_order_when_its_entry_is_gone()
    {
        // A close whose loss exceeds the balance: 1 at 100 on 20 of cash, closed at 70.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(20m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        await _trading.UpsertAsync(instrument with { LastPrice = 70m });
        var close = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m);
        var valid = await _trading.IntegrityAsync(user, close.Guid("transaction_id"));

        await TamperAsync("DELETE FROM trading.write_offs WHERE user_id = @user AND order_id = @order", user, close.Guid("order_id"));
        var response = await _trading.IntegrityAsync(user, close.Guid("transaction_id"));

        Assert.True(valid.Bool("valid"), valid.Json);
        Assert.False(response.Bool("valid"));
        Assert.Equal(["write_off_matches_order"], Checks(response).Where(c => !c.Passed).Select(c => c.Name));
    }

    [Fact]
    public async Task Integrity_check_of_another_traders_transaction_is_not_found()
    {
        var (_, executed) = await ArrangeExecutedOrderAsync();
        var other = await _trading.NewTraderAsync(10m);

        var response = await _trading.IntegrityAsync(other, executed.Guid("transaction_id"));

        Assert.Equal(("ORDER_NOT_FOUND", 404), (response.ErrorCode, response.Status));
    }

    private async Task<(Guid User, Envelope Executed)> ArrangeExecutedOrderAsync()
    {
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var executed = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 2m);
        return (user, executed);
    }

    /// <summary>An admin's change with every trigger off: what the integrity check exists to catch.</summary>
    private async Task TamperAsync(string sql, Guid user, Guid order)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(new CommandDefinition("SET LOCAL session_replication_role = replica", transaction: transaction));
        var changed = await connection.ExecuteAsync(new CommandDefinition(sql, new { user, order }, transaction));
        await transaction.CommitAsync();
        Assert.True(changed > 0, $"nothing was tampered with: {sql}");
    }

    private static List<(string Name, bool Passed)> Checks(Envelope response) =>
        response.Get("checks").EnumerateArray()
            .Select(c => (c.GetProperty("name").GetString()!, c.GetProperty("passed").GetBoolean()))
            .ToList();
}
