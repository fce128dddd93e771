using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>trading.rollback_order_execution: exact compensation of an executed order, or failing an unfinished one.</summary>
public sealed class RollbackTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Rollback_of_an_order_that_opened_a_position_restores_the_account_and_closes_the_position()
    {
        // Arrange
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var account = await _trading.AccountSnapshotAsync(user);
        var executed = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 3m);
        var orderId = executed.Guid("order_id");

        // Act
        var response = await _trading.RollbackAsync(user, orderId, "wrong instrument");

        // Assert
        Assert.True(response.Success, response.Json);
        Assert.Equal(200, response.Status);
        Assert.Equal("rolled_back", response.String("status"));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        var position = Assert.Single(await _trading.PositionsAsync(user));
        Assert.Equal(("closed", 0m, 0m), (position.Status, position.Quantity, position.UsedMargin));

        var order = await _trading.OrderAsync(user, orderId);
        Assert.Equal("rolled_back", order.Status);
        Assert.NotNull(order.RolledBackAt);
        Assert.Equal(response.Guid("transaction_id"), order.RollbackTransactionId);
        Assert.Equal("wrong instrument", order.FailureReason);
        Assert.Equal(["EXECUTED", "ROLLED_BACK"], (await _trading.ExecutionLogsAsync(user)).Select(l => l.Event));
        var audit = (await _trading.AuditAsync(user))[^1];
        Assert.Equal(("order_rolled_back", orderId), (audit.Reason, audit.OrderId));
        Assert.Equal((9_997m, 10_000m, 300m, 0m), (audit.BalanceBefore, audit.BalanceAfter, audit.MarginBefore, audit.MarginAfter));

        var integrity = await _trading.IntegrityAsync(user, order.RollbackTransactionId!.Value);
        Assert.True(integrity.Bool("valid"), integrity.Json);
    }

    [Fact]
    public async Task Rollback_of_a_partial_close_restores_balances_and_the_position_exactly()
    {
        // Arrange: a long of 3, then a sale of 1 at a profit.
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 3m);
        var positionId = opening.Guid("position.id");
        var account = await _trading.AccountSnapshotAsync(user);
        var position = await _trading.PositionSnapshotAsync(user, positionId);
        await _trading.UpsertAsync(instrument with { LastPrice = 105.5m });
        var sale = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m);
        Assert.NotEqual(account, await _trading.AccountSnapshotAsync(user));
        Assert.NotEqual(position, await _trading.PositionSnapshotAsync(user, positionId));

        // Act
        var response = await _trading.RollbackAsync(user, sale.Guid("order_id"));

        // Assert: balance, used_margin, realized_pnl and the whole position row as before the sale.
        Assert.True(response.Success, response.Json);
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(position, await _trading.PositionSnapshotAsync(user, positionId));
    }

    [Fact]
    public async Task Rollback_of_a_flip_reopens_the_old_position_and_closes_the_new_one()
    {
        // Arrange: a long of 2, then a sale of 5 that closes it and opens a short of 3.
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var opening = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 2m);
        var longId = opening.Guid("position.id");
        var account = await _trading.AccountSnapshotAsync(user);
        var position = await _trading.PositionSnapshotAsync(user, longId);
        await _trading.UpsertAsync(instrument with { LastPrice = 90m });
        var flip = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 5m);
        var shortId = flip.Guid("position.id");

        // Act
        var response = await _trading.RollbackAsync(user, flip.Guid("order_id"));

        // Assert
        Assert.True(response.Success, response.Json);
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(position, await _trading.PositionSnapshotAsync(user, longId));
        var shortPosition = await _trading.PositionAsync(user, shortId);
        Assert.Equal(("closed", 0m, 0m), (shortPosition.Status, shortPosition.Quantity, shortPosition.UsedMargin));
    }

    [Fact]
    public async Task Rollback_after_a_later_order_changed_the_position_is_a_conflict()
    {
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var first = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var account = await _trading.AccountSnapshotAsync(user);
        var positions = await _trading.PositionsSnapshotAsync(user);

        var response = await _trading.RollbackAsync(user, first.Guid("order_id"));

        Assert.False(response.Success);
        Assert.Equal(("ROLLBACK_CONFLICT", 409), (response.ErrorCode, response.Status));
        Assert.Equal("executed", (await _trading.OrderAsync(user, first.Guid("order_id"))).Status);
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(positions, await _trading.PositionsSnapshotAsync(user));
    }

    [Fact]
    public async Task Rollback_of_a_close_after_the_symbol_was_reopened_is_a_conflict()
    {
        // Reopening the closed position would make two open positions for one symbol.
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var close = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "sell", 1m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 2m);
        var account = await _trading.AccountSnapshotAsync(user);
        var positions = await _trading.PositionsSnapshotAsync(user);

        var response = await _trading.RollbackAsync(user, close.Guid("order_id"));

        Assert.Equal(("ROLLBACK_CONFLICT", 409), (response.ErrorCode, response.Status));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(positions, await _trading.PositionsSnapshotAsync(user));
    }

    [Fact]
    public async Task Rollback_twice_is_an_invalid_order_state()
    {
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var executed = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var once = await _trading.RollbackAsync(user, executed.Guid("order_id"));
        var account = await _trading.AccountSnapshotAsync(user);
        var logs = (await _trading.ExecutionLogsAsync(user)).Count;

        var twice = await _trading.RollbackAsync(user, executed.Guid("order_id"));

        Assert.True(once.Success, once.Json);
        Assert.False(twice.Success);
        Assert.Equal(("INVALID_ORDER_STATE", 400), (twice.ErrorCode, twice.Status));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(logs, (await _trading.ExecutionLogsAsync(user)).Count);
    }

    [Fact]
    public async Task Rollback_of_a_rejected_order_is_an_invalid_order_state()
    {
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1m);
        var rejected = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1m);

        var response = await _trading.RollbackAsync(user, rejected.Guid("order_id"));

        Assert.Equal("rejected", rejected.String("status"));
        Assert.Equal(("INVALID_ORDER_STATE", 400), (response.ErrorCode, response.Status));
    }

    [Fact]
    public async Task Rollback_of_an_order_stuck_in_executing_fails_it_with_a_failed_log()
    {
        // Arrange: an order a crashed caller left half-way, as only the admin can write it.
        var instrument = await _trading.NewInstrumentAsync(10m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var orderId = Guid.NewGuid();
        await _trading.AdminAsync(c => c.ExecuteAsync(
            """
            INSERT INTO trading.orders (user_id, id, symbol, side, type, quantity, status, transaction_id, idempotency_key, request_fingerprint)
            VALUES (@user, @orderId, @symbol, 'buy', 'market', 1, 'executing', gen_random_uuid(), gen_random_uuid()::text, 'fingerprint')
            """, new { user, orderId, symbol = instrument.Symbol }));
        var account = await _trading.AccountSnapshotAsync(user);

        // Act
        var response = await _trading.RollbackAsync(user, orderId, "orphan scan: stuck for 20 minutes");

        // Assert
        Assert.True(response.Success, response.Json);
        Assert.Equal(("failed", "executing"), (response.String("status"), response.String("previous_status")));
        var order = await _trading.OrderAsync(user, orderId);
        Assert.Equal(("failed", "orphan scan: stuck for 20 minutes"), (order.Status, order.FailureReason));
        Assert.NotNull(order.Response);
        var log = Assert.Single(await _trading.ExecutionLogsAsync(user));
        Assert.Equal(("FAILED", "orphan scan: stuck for 20 minutes", orderId), (log.Event, log.Reason, log.OrderId));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Empty(await _trading.PositionsAsync(user));
        var integrity = await _trading.IntegrityAsync(user, order.RollbackTransactionId!.Value);
        Assert.True(integrity.Bool("valid"), integrity.Json);
    }

    [Fact]
    public async Task Rollback_of_an_unknown_order_is_not_found()
    {
        var user = await _trading.NewTraderAsync(1_000m);

        var response = await _trading.RollbackAsync(user, Guid.NewGuid());

        Assert.Equal(("ORDER_NOT_FOUND", 404), (response.ErrorCode, response.Status));
    }
}
