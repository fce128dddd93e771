using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// History is append-only for every role: the owner of the tables (with the row's trader as context, so row-level
/// security lets it reach the row) and the superuser both fail, and the rows stay.
/// </summary>
public sealed class ImmutabilityTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    public static TheoryData<string, string, bool> Changes()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var table in new[] { "execution_logs", "balance_audit_log", "write_offs" })
        {
            foreach (var change in new[] { "UPDATE", "DELETE", "TRUNCATE" })
            {
                data.Add(table, change, true);
                data.Add(table, change, false);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Changes))]
    public async Task History_cannot_be_changed(string table, string change, bool asOwner)
    {
        // Arrange: a trader with execution-log and audit rows, and a write-off (a close whose loss exceeds the balance).
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(20m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        await _trading.UpsertAsync(instrument with { LastPrice = 70m });
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m);
        var before = await _trading.CountsAsync(user);
        Assert.Equal(1, before.WriteOffs);

        // Act
        var e = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var connection = await database.OpenAdminConnectionAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            if (asOwner)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "SELECT set_config('role', 'orders_owner', true), set_config('app.user_id', @user, true)", new { user = user.ToString() }, transaction));
            }

            var changed = await connection.ExecuteAsync(new CommandDefinition(Statement(table, change), new { user }, transaction));
            await transaction.CommitAsync();
            Assert.Fail($"{change} on {table} changed {changed} row(s)");
        });

        // Assert
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
        Assert.Contains($"trading.{table}", e.MessageText, StringComparison.Ordinal);
        Assert.Equal(before, await _trading.CountsAsync(user));
    }

    [Fact]
    public async Task Error_log_rows_can_only_be_resolved()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1m);
        await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 100m);

        var e = await Assert.ThrowsAsync<PostgresException>(() => _trading.AdminAsync(c =>
            c.ExecuteAsync("UPDATE trading.error_log SET message = 'all good' WHERE user_id = @user", new { user })));
        var resolved = await _trading.AdminAsync(c =>
            c.ExecuteAsync("UPDATE trading.error_log SET resolved_at = now() WHERE user_id = @user", new { user }));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
        Assert.Equal(1, resolved);
    }

    private static string Statement(string table, string change) => (table, change) switch
    {
        ("execution_logs", "UPDATE") => "UPDATE trading.execution_logs SET reason = 'rewritten' WHERE user_id = @user",
        ("execution_logs", "DELETE") => "DELETE FROM trading.execution_logs WHERE user_id = @user",
        ("execution_logs", "TRUNCATE") => "TRUNCATE trading.execution_logs",
        ("balance_audit_log", "UPDATE") => "UPDATE trading.balance_audit_log SET reason = 'rewritten' WHERE user_id = @user",
        ("balance_audit_log", "DELETE") => "DELETE FROM trading.balance_audit_log WHERE user_id = @user",
        ("balance_audit_log", "TRUNCATE") => "TRUNCATE trading.balance_audit_log",
        ("write_offs", "UPDATE") => "UPDATE trading.write_offs SET amount = 0.01 WHERE user_id = @user",
        ("write_offs", "DELETE") => "DELETE FROM trading.write_offs WHERE user_id = @user",
        ("write_offs", "TRUNCATE") => "TRUNCATE trading.write_offs",
        _ => throw new ArgumentOutOfRangeException(nameof(table), $"{change} on {table}"),
    };
}
