using System.Globalization;
using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// Impossible rows are refused by the table itself, whoever writes them: each is inserted as the admin and must
/// fail with check_violation (23514) naming the constraint that guards it.
/// </summary>
public sealed class CheckConstraintTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private const string InsertOrder = """
        INSERT INTO trading.orders (user_id, symbol, side, type, quantity, filled_quantity, limit_price, status, transaction_id, idempotency_key, request_fingerprint)
        VALUES (@user, @symbol, 'buy', @type, @quantity, @filled, @limit, 'pending', gen_random_uuid(), gen_random_uuid()::text, 'fingerprint')
        """;

    [Theory]
    [InlineData("-0.00000001")]
    [InlineData("-100")]
    public async Task Accounts_reject_a_negative_balance(string balance)
    {
        var e = await InsertAsync(
            "INSERT INTO trading.accounts (user_id, balance) VALUES (gen_random_uuid(), @balance)", new { balance = decimal.Parse(balance, CultureInfo.InvariantCulture) });

        AssertCheckViolation(e, "accounts_balance_check");
    }

    [Fact]
    public async Task Accounts_reject_negative_used_margin()
    {
        var e = await InsertAsync("INSERT INTO trading.accounts (user_id, balance, used_margin) VALUES (gen_random_uuid(), 10, -1)", new { });

        AssertCheckViolation(e, "accounts_used_margin_check");
    }

    [Fact]
    public async Task Orders_reject_a_quantity_of_zero()
    {
        // Zero, not a negative quantity: that would also break orders_filled_within_quantity (0 <= filled <= quantity).
        var e = await InsertAsync(InsertOrder, (user, symbol) => new { user, symbol, type = "market", quantity = 0m, filled = 0m, limit = (decimal?)null });

        AssertCheckViolation(e, "orders_quantity_check");
    }

    [Fact]
    public async Task Orders_reject_a_limit_order_without_a_price()
    {
        var e = await InsertAsync(InsertOrder, (user, symbol) => new { user, symbol, type = "limit", quantity = 1m, filled = 0m, limit = (decimal?)null });

        AssertCheckViolation(e, "orders_limit_price_iff_limit");
    }

    [Fact]
    public async Task Orders_reject_a_market_order_with_a_price()
    {
        var e = await InsertAsync(InsertOrder, (user, symbol) => new { user, symbol, type = "market", quantity = 1m, filled = 0m, limit = (decimal?)100m });

        AssertCheckViolation(e, "orders_limit_price_iff_limit");
    }

    [Fact]
    public async Task Orders_reject_a_filled_quantity_above_the_quantity()
    {
        var e = await InsertAsync(InsertOrder, (user, symbol) => new { user, symbol, type = "market", quantity = 1m, filled = 1.5m, limit = (decimal?)null });

        // A pending order with a fill also breaks orders_unfilled_unless_executed; PostgreSQL checks in name order.
        AssertCheckViolation(e, "orders_filled_within_quantity");
    }

    [Fact]
    public async Task Positions_reject_an_open_position_with_zero_quantity()
    {
        var e = await InsertAsync(
            "INSERT INTO trading.positions (user_id, symbol, side, quantity, avg_entry_price, status) VALUES (@user, @symbol, 'long', 0, 100, 'open')",
            (user, symbol) => new { user, symbol });

        AssertCheckViolation(e, "positions_open_has_quantity");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-0.1")]
    [InlineData("1.00000001")]
    [InlineData("2")]
    public async Task Instruments_reject_a_margin_rate_outside_zero_to_one(string marginRate)
    {
        var e = await InsertAsync(
            "INSERT INTO trading.instruments (symbol, contract_size, margin_rate, min_qty, qty_step, tick_size) VALUES (@symbol, 1, @marginRate, 1, 1, 1)",
            new { symbol = Instrument.NewSymbol(), marginRate = decimal.Parse(marginRate, CultureInfo.InvariantCulture) });

        AssertCheckViolation(e, "instruments_margin_rate_check");
    }

    [Theory]
    [InlineData("", "fingerprint", "{}", "deposit_requests_idempotency_key_check")]
    [InlineData("key", "", "{}", "deposit_requests_request_fingerprint_check")]
    [InlineData("key", "fingerprint", "[]", "deposit_requests_response_check")]
    public async Task Deposit_requests_reject_an_empty_key_or_fingerprint_and_a_response_that_is_not_an_object(
        string key, string fingerprint, string response, string constraint)
    {
        var e = await InsertAsync(
            """
            INSERT INTO trading.deposit_requests (user_id, idempotency_key, request_fingerprint, transaction_id, response)
            VALUES (@user, @key, @fingerprint, gen_random_uuid(), @response::jsonb)
            """,
            (user, _) => new { user, key, fingerprint, response });

        AssertCheckViolation(e, constraint);
    }

    [Theory]
    [InlineData("stop_loss", "trader", "0", "orders_system_types_are_system")]
    [InlineData("market", "system", "0", "orders_system_types_are_system")]
    [InlineData("market", "broker", "0", "orders_source_check")]
    [InlineData("market", "trader", "-1", "orders_write_off_check")]
    public async Task Orders_reject_a_system_type_from_a_trader_an_unknown_source_and_a_negative_write_off(
        string type, string source, string writeOff, string constraint)
    {
        var e = await InsertAsync(
            """
            INSERT INTO trading.orders (user_id, symbol, side, type, source, quantity, write_off, status, transaction_id, idempotency_key, request_fingerprint)
            VALUES (@user, @symbol, 'buy', @type, @source, 1, @writeOff, 'pending', gen_random_uuid(), gen_random_uuid()::text, 'fingerprint')
            """,
            (user, symbol) => new { user, symbol, type, source, writeOff = decimal.Parse(writeOff, CultureInfo.InvariantCulture) });

        AssertCheckViolation(e, constraint);
    }

    [Theory]
    [InlineData("negative_balance", "-5", false, "write_offs_sign_follows_reason")]
    [InlineData("order_rolled_back", "5", true, "write_offs_sign_follows_reason")]
    [InlineData("order_rolled_back", "-5", false, "write_offs_reversal_names_its_order")]
    [InlineData("forgiven", "5", false, "write_offs_reason_check")]
    public async Task Write_offs_reject_a_sign_that_does_not_follow_the_reason_and_a_reversal_of_no_order(string reason, string amount, bool withOrder,
        string constraint)
    {
        // (CHECKs are judged before the foreign key, so the order need not exist.)
        var e = await InsertAsync(
            "INSERT INTO trading.write_offs (user_id, order_id, transaction_id, reason, amount) VALUES (@user, @order, gen_random_uuid(), @reason, @amount)",
            (user, _) => new { user, order = withOrder ? Guid.NewGuid() : (Guid?)null, reason, amount = decimal.Parse(amount, CultureInfo.InvariantCulture) });

        AssertCheckViolation(e, constraint);
    }

    [Theory]
    [InlineData("stop_loss", false, true)]
    [InlineData("price_moved", true, true)]
    [InlineData("price_moved", false, true)]
    public async Task Risk_events_name_a_position_and_its_trader_exactly_when_they_are_a_close(string kind, bool withPosition, bool withUser)
    {
        var e = await InsertAsync(
            "INSERT INTO trading.risk_events (kind, symbol, user_id, position_id, price) VALUES (@kind, @symbol, @user, @position, 10)",
            (user, symbol) => new { kind, symbol, user = withUser ? user : (Guid?)null, position = withPosition ? Guid.NewGuid() : (Guid?)null });

        AssertCheckViolation(e, "risk_events_position_iff_stop");
    }

    [Fact]
    public async Task Instruments_accept_a_margin_rate_of_exactly_one()
    {
        var symbol = Instrument.NewSymbol();

        var inserted = await database.AdminExecuteAsync(
            "INSERT INTO trading.instruments (symbol, contract_size, margin_rate, min_qty, qty_step, tick_size) VALUES ($1, 1, 1, 1, 1, 1)", symbol);

        Assert.Equal(1, inserted);
    }

    private static void AssertCheckViolation(PostgresException e, string constraint)
    {
        Assert.Equal(PostgresErrorCodes.CheckViolation, e.SqlState);
        Assert.Equal(constraint, e.ConstraintName);
    }

    private Task<PostgresException> InsertAsync(string sql, object? parameters) => InsertAsync(sql, (_, _) => parameters);

    /// <summary>Inserts as admin after arranging a trader and an instrument, in a transaction that never commits.</summary>
    private async Task<PostgresException> InsertAsync(string sql, Func<Guid, string, object?> parameters)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var user = Guid.NewGuid();
        var symbol = Instrument.NewSymbol();
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO trading.accounts (user_id, balance) VALUES (@user, 1000);
            INSERT INTO trading.instruments (symbol, contract_size, margin_rate, min_qty, qty_step, tick_size) VALUES (@symbol, 1, 0.1, 0.01, 0.01, 0.01);
            """, new { user, symbol }, transaction));

        return await Assert.ThrowsAsync<PostgresException>(() =>
            connection.ExecuteAsync(new CommandDefinition(sql, parameters(user, symbol), transaction)));
    }
}
