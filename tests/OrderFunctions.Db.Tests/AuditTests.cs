using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>The balance audit trail: written by a trigger on accounts, so no code path moves money unaudited.</summary>
public sealed class AuditTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task A_direct_balance_update_by_the_admin_is_audited()
    {
        var user = await _trading.NewTraderAsync(100m);

        var updated = await _trading.AdminAsync(c => c.ExecuteAsync(
            "UPDATE trading.accounts SET balance = balance + 5 WHERE user_id = @user", new { user }));

        Assert.Equal(1, updated);
        var audit = await _trading.AuditAsync(user);
        Assert.Equal(2, audit.Count);
        Assert.StartsWith("direct_update", audit[1].Reason, StringComparison.Ordinal);
        Assert.Equal((100m, 105m), (audit[1].BalanceBefore, audit[1].BalanceAfter));
        Assert.Null(audit[1].OrderId);
    }

    [Fact]
    public async Task An_update_that_moves_no_money_is_not_audited()
    {
        var user = await _trading.NewTraderAsync(100m);

        await _trading.AdminAsync(c => c.ExecuteAsync("UPDATE trading.accounts SET status = 'suspended' WHERE user_id = @user", new { user }));

        Assert.Single(await _trading.AuditAsync(user));
    }

    [Fact]
    public async Task Audit_rows_chain_over_deposits_orders_and_a_rollback()
    {
        // Arrange and act: every kind of money movement, one after another.
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 3m);
        await _trading.DepositAsync(user, 50m);
        await _trading.UpsertAsync(instrument with { LastPrice = 104m });
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m);
        var last = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        await _trading.RollbackAsync(user, last.Guid("order_id"));

        // Assert
        var audit = await _trading.AuditAsync(user);
        Assert.Equal(["deposit", "order_executed", "deposit", "order_executed", "order_executed", "order_rolled_back"], audit.Select(a => a.Reason));
        Assert.Equal((0m, 0m), (audit[0].BalanceBefore, audit[0].MarginBefore));
        for (var i = 1; i < audit.Count; i++)
        {
            Assert.Equal(audit[i - 1].BalanceAfter, audit[i].BalanceBefore);
            Assert.Equal(audit[i - 1].MarginAfter, audit[i].MarginBefore);
        }

        var account = await _trading.ExistingAccountAsync(user);
        Assert.Equal((account.Balance, account.UsedMargin), (audit[^1].BalanceAfter, audit[^1].MarginAfter));
        Assert.Equal("[]", await _trading.RowsAsync("trading.balance_audit_chain_breaks(@user)", user));
    }

    [Fact]
    public async Task Audit_rows_report_equity_at_last_prices_around_a_close()
    {
        // Arrange: long 3 at 100 (contract 10; margin 300, commission 3, balance 9997); the price rises to 105.5.
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 3m);
        await _trading.UpsertAsync(instrument with { LastPrice = 105.5m });

        // Act: sell 1: realized 55, commission 1.055.
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m);

        // Assert: equity before = 9997 + 3 × 10 × 5.5 = 10162; after = 10050.945 + 2 × 10 × 5.5 = 10160.945.
        var audit = (await _trading.AuditAsync(user))[^1];
        Assert.Equal((9_997m, 10_050.945m), (audit.BalanceBefore, audit.BalanceAfter));
        Assert.Equal((300m, 200m), (audit.MarginBefore, audit.MarginAfter));
        Assert.Equal(10_162m, audit.EquityBefore);
        Assert.Equal(10_160.945m, audit.EquityAfter);
    }
}
