using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// Unexpected errors inside the money functions: everything the call wrote is rolled back, one
/// error_log row records it, the caller gets INTERNAL_ERROR 500, and an order's key stays free for a retry.
/// The fault is a trigger injected into this test class's own database: it fails any fill, or ROLLED_BACK
/// execution log of an order, for a symbol listed in public.failing_symbols: late in the call, after other rows
/// were written.
/// </summary>
public sealed class InternalErrorTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>, IAsyncLifetime
{
    private const string InjectFault = """
        CREATE TABLE IF NOT EXISTS public.failing_symbols (symbol text PRIMARY KEY);
        GRANT SELECT ON public.failing_symbols TO PUBLIC;
        CREATE OR REPLACE FUNCTION public.fail_listed_symbols() RETURNS trigger
            LANGUAGE plpgsql
        AS $$
        DECLARE
            v_symbol text := to_jsonb(NEW) ->> 'symbol';
        BEGIN
            -- A fill names its symbol; an execution log names its order.
            IF v_symbol IS NULL THEN
                SELECT o.symbol INTO v_symbol FROM trading.orders o WHERE o.user_id = NEW.user_id AND o.id = NEW.order_id;
            END IF;
            IF EXISTS (SELECT 1 FROM public.failing_symbols WHERE symbol = v_symbol) THEN
                RAISE EXCEPTION 'injected fault in % for the test', TG_TABLE_NAME;
            END IF;
            RETURN NEW;
        END
        $$;
        DROP TRIGGER IF EXISTS injected_fault ON trading.fills;
        CREATE TRIGGER injected_fault BEFORE INSERT ON trading.fills
            FOR EACH ROW EXECUTE FUNCTION public.fail_listed_symbols();
        DROP TRIGGER IF EXISTS injected_fault ON trading.execution_logs;
        CREATE TRIGGER injected_fault BEFORE INSERT ON trading.execution_logs
            FOR EACH ROW WHEN (NEW.event = 'ROLLED_BACK') EXECUTE FUNCTION public.fail_listed_symbols();
        """;

    private readonly Trading _trading = new(database);

    public async Task InitializeAsync() => await database.AdminExecuteAsync(InjectFault);

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task An_order_that_fails_unexpectedly_writes_nothing_but_its_error_and_its_key_stays_free()
    {
        // Arrange: a trader with an open position, so the failing order would have updated it.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var counts = await _trading.CountsAsync(user);
        var account = await _trading.AccountSnapshotAsync(user);
        var positions = await _trading.PositionsSnapshotAsync(user);
        await FailAsync(instrument.Symbol);

        // Act
        var failed = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 2m, key: "fails-once");
        var countsAfterFailure = await _trading.CountsAsync(user);
        await RecoverAsync(instrument.Symbol);
        var retried = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 2m, key: "fails-once");

        // Assert
        Assert.False(failed.Success);
        Assert.Equal(("INTERNAL_ERROR", 500), (failed.ErrorCode, failed.Status));
        Assert.DoesNotContain("injected", failed.Json, StringComparison.Ordinal);
        Assert.Equal(counts with { ErrorLog = counts.ErrorLog + 1 }, countsAfterFailure);
        var error = (await _trading.ErrorLogAsync(user))[^1];
        Assert.Equal(("error", "INTERNAL_ERROR"), (error.Severity, error.ErrorCode));
        Assert.Equal("injected fault in fills for the test", error.Message);
        Assert.Equal(failed.Guid("transaction_id"), error.TransactionId);
        Assert.True(retried.Success, retried.Json);
        Assert.False(retried.Replayed);
        Assert.NotEqual(account, await _trading.AccountSnapshotAsync(user));
        Assert.NotEqual(positions, await _trading.PositionsSnapshotAsync(user));
        Assert.Equal("[]", await _trading.RowsAsync("trading.ledger_mismatches(@user)", user));
    }

    [Fact]
    public async Task A_rollback_that_fails_unexpectedly_changes_nothing_but_its_error()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        var executed = await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m);
        var orderId = executed.Guid("order_id");
        var counts = await _trading.CountsAsync(user);
        var account = await _trading.AccountSnapshotAsync(user);
        var positions = await _trading.PositionsSnapshotAsync(user);
        await FailAsync(instrument.Symbol);

        var failed = await _trading.RollbackAsync(user, orderId);

        Assert.Equal(("INTERNAL_ERROR", 500), (failed.ErrorCode, failed.Status));
        Assert.Equal(counts with { ErrorLog = counts.ErrorLog + 1 }, await _trading.CountsAsync(user));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(positions, await _trading.PositionsSnapshotAsync(user));
        Assert.Equal("executed", (await _trading.OrderAsync(user, orderId)).Status);
        var error = (await _trading.ErrorLogAsync(user))[^1];
        Assert.Equal(("INTERNAL_ERROR", orderId), (error.ErrorCode, error.OrderId));
        Assert.Equal("injected fault in execution_logs for the test", error.Message);
    }

    [Fact]
    public async Task A_risk_batch_that_fails_unexpectedly_changes_nothing_logs_its_error_and_leaves_its_work_queued()
    {
        // Arrange: a stop crossed by a price, and the system close's fill failing.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10_000m);
        await _trading.ExecutedOrderAsync(user, instrument.Symbol, "buy", 1m, stopLoss: 95m);
        await _trading.SetPricesAsync((instrument.Symbol, 90m));
        var account = await _trading.AccountSnapshotAsync(user);
        var positions = await _trading.PositionsSnapshotAsync(user);
        await FailAsync(instrument.Symbol);

        // Act
        var failed = await _trading.ProcessRiskEventsAsync();
        var afterFailure = (await _trading.AccountSnapshotAsync(user), await _trading.PositionsSnapshotAsync(user), await QueuedAsync(instrument.Symbol));
        var waitSeconds = await database.AdminScalarAsync<double>(
            "SELECT extract(epoch FROM retry_at - now())::float8 FROM trading.risk_events WHERE symbol = $1 AND attempts = 1", instrument.Symbol);
        await RecoverAsync(instrument.Symbol);
        var drainedWhileWaiting = await _trading.DrainAsync();
        await database.AdminExecuteAsync("UPDATE trading.risk_events SET retry_at = now() - interval '1 second' WHERE symbol = $1", instrument.Symbol);
        await _trading.DrainAsync();

        // Assert: nothing of the batch stayed, its error is recorded, the failed close waits a minute (the margin check
        // behind it went on), and a batch after that does the work.
        Assert.Equal(("INTERNAL_ERROR", 500), (failed.ErrorCode, failed.Status));
        Assert.DoesNotContain("injected", failed.Json, StringComparison.Ordinal);
        Assert.Equal((account, positions, 2L), afterFailure);
        Assert.InRange(waitSeconds, 50, 60);
        Assert.Equal(0, drainedWhileWaiting.Sum(b => (int)b.Decimal("closed.stop_loss")));
        Assert.Equal(1, await database.AdminScalarAsync<long>(
            "SELECT count(*) FROM trading.error_log WHERE context ->> 'function' = 'process_risk_events' AND message = 'injected fault in fills for the test'"));
        Assert.Single(await _trading.OrdersAsync(user), o => o.Type == "stop_loss" && o.Status == "executed");
        Assert.Equal(0, await QueuedAsync(instrument.Symbol));
    }

    private Task<long> QueuedAsync(string symbol) => database.AdminScalarAsync<long>("SELECT count(*) FROM trading.risk_events WHERE symbol = $1", symbol);

    private Task FailAsync(string symbol) => database.AdminExecuteAsync("INSERT INTO public.failing_symbols VALUES ($1)", symbol);

    private Task RecoverAsync(string symbol) => database.AdminExecuteAsync("DELETE FROM public.failing_symbols WHERE symbol = $1", symbol);
}
