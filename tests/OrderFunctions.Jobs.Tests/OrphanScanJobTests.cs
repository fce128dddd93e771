using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Jobs.Tests.Support;

namespace OrderFunctions.Jobs.Tests;

/// <summary>The orphan scan on a database of each test's own: what it fails, and what it reports by check name.</summary>
public class OrphanScanJobTests : IAsyncLifetime
{
    /// <summary>Whether the jobs reach the database through PgBouncer (transaction pooling); see the derived class.</summary>
    protected virtual bool ThroughPgBouncer => false;

    private static readonly MaintenanceSettings Settings = new() { OrphanThresholdMinutes = 10 };
    private JobsDatabase _db = null!;

    public async Task InitializeAsync() => _db = await JobsDatabase.CreateAsync(ThroughPgBouncer);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private OrphanScanJob Job() => new(_db.Orders, Settings, _db.Risk(), JobsDatabase.NoPublishedHeads, NullLogger<OrphanScanJob>.Instance);

    [Fact]
    public async Task Orphan_scan_fails_and_audits_an_order_stuck_in_executing_past_the_threshold()
    {
        // Arrange
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        var stuck = await _db.InsertStuckOrderAsync(user, symbol, "executing", TimeSpan.FromMinutes(30));
        var young = await _db.InsertStuckOrderAsync(user, symbol, "pending", TimeSpan.FromMinutes(2));

        // Act
        var run = await Job().RunAsync("test", CancellationToken.None);

        // Assert: the old order is failed, with a FAILED execution log written as its trader
        Assert.Equal(JobRun.Succeeded, run.Status);
        var orders = (await _db.AdminAsync(c => c.QueryAsync<(Guid Id, string Status, string? FailureReason)>(
            "SELECT id, status, failure_reason FROM trading.orders WHERE user_id = @User", new { User = user }))).ToDictionary(o => o.Id);
        Assert.Equal("failed", orders[stuck].Status);
        Assert.StartsWith("orphan scan: executing for more than 10 minutes", orders[stuck].FailureReason, StringComparison.Ordinal);
        var logs = (await _db.AdminAsync(c => c.QueryAsync<(Guid OrderId, string Event)>(
            "SELECT order_id, event FROM trading.execution_logs WHERE user_id = @User ORDER BY seq", new { User = user }))).ToList();
        Assert.Equal([(stuck, "FAILED")], logs);
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.execution_log_chain_breaks(@User)", new { User = user }));

        // the younger one is left alone
        Assert.Equal("pending", orders[young].Status);

        // and the run says what it did
        var failed = Assert.Single(run.Findings[OrphanScanJob.StuckOrders]!.AsArray());
        Assert.Equal(stuck.ToString(), (string?)failed!["order_id"]);
        Assert.Equal("failed", (string?)failed["outcome"]);
        Assert.Equal(1, (long?)run.Findings["counts"]![OrphanScanJob.StuckOrders]);
        var stored = await _db.RunAsync(run.RunId);
        Assert.Equal((JobNames.OrphanScan, "test", JobRun.Succeeded), (stored.Job, stored.Trigger, stored.Status));
        Assert.Equal(stuck.ToString(), (string?)stored.FindingsJson[OrphanScanJob.StuckOrders]![0]!["order_id"]);
    }

    [Fact]
    public async Task Orphan_scan_reports_a_balance_changed_without_an_audit_row_as_a_ledger_mismatch()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        // Replica mode skips the audit trigger: money moved with no audit row.
        await _db.TamperAsync("UPDATE trading.accounts SET balance = balance + 50 WHERE user_id = @User", new { User = user });

        var run = await Job().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        var mismatch = Assert.Single(Rows(run, "ledger_mismatches"))!;
        Assert.Equal(user.ToString(), (string?)mismatch["user_id"]);
        Assert.Equal((decimal?)mismatch["ledger_balance"] + 50m, (decimal?)mismatch["balance"]);
        Assert.Equal(1, (long?)run.Findings["counts"]!["ledger_mismatches"]);
        Assert.Empty(Rows(run, "balance_audit_chain_breaks"));
        Assert.Empty(Rows(run, "execution_log_chain_breaks"));
    }

    [Fact]
    public async Task Orphan_scan_reports_an_audit_row_that_does_not_continue_the_previous_one_as_a_chain_break()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        // Shift one middle row's before and after alike: its delta (and so the ledger) is unchanged, the chain is not.
        await _db.TamperAsync(
            """
            UPDATE trading.balance_audit_log SET balance_before = balance_before + 5, balance_after = balance_after + 5
            WHERE id = (SELECT id FROM trading.balance_audit_log WHERE user_id = @User ORDER BY id OFFSET 1 LIMIT 1)
            """, new { User = user });

        var run = await Job().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        var breaks = Rows(run, "balance_audit_chain_breaks");
        Assert.Equal(2, breaks.Count);
        Assert.All(breaks, b => Assert.Equal(user.ToString(), (string?)b!["user_id"]));
        Assert.Empty(Rows(run, "ledger_mismatches"));
    }

    [Fact]
    public async Task Orphan_scan_reports_an_edited_execution_log_row_as_a_hash_chain_break()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        await _db.ExecutedOrderAsync(user, symbol, "sell", 1m);
        await _db.TamperAsync("UPDATE trading.execution_logs SET reason = 'rewritten history' WHERE user_id = @User AND seq = 1", new { User = user });

        var run = await Job().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        var broken = Assert.Single(Rows(run, "execution_log_chain_breaks"));
        Assert.Equal((user.ToString(), 1L, "row_hash does not match the row"),
            ((string?)broken!["user_id"], (long?)broken["seq"], (string?)broken["problem"]));
    }

    [Fact]
    public async Task Orphan_scan_reports_rows_whose_parent_is_gone_and_open_positions_with_zero_quantity()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        var missingOrder = Guid.NewGuid();
        // Replica mode skips the foreign-key triggers; CHECK constraints it does not skip, so that one is dropped.
        await _db.TamperAsync(
            """
            INSERT INTO trading.fills (user_id, order_id, symbol, side, quantity, price, commission, transaction_id)
            VALUES (@User, @Order, @Symbol, 'buy', 1, 100, 0, gen_random_uuid());
            ALTER TABLE trading.positions DROP CONSTRAINT positions_open_has_quantity;
            UPDATE trading.positions SET quantity = 0 WHERE user_id = @User;
            """, new { User = user, Order = missingOrder, Symbol = symbol });

        var run = await Job().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        var orphans = Rows(run, "orphan_rows").ToDictionary(r => (string)r!["check_name"]!);
        Assert.Equal(["fill_without_order", "open_position_with_zero_quantity"], orphans.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(missingOrder.ToString(), (string?)orphans["fill_without_order"]!["row_key"]!["order_id"]);
        Assert.Equal(user.ToString(), (string?)orphans["open_position_with_zero_quantity"]!["row_key"]!["user_id"]);
        Assert.Equal(2, (long?)run.Findings["counts"]!["orphan_rows"]);
    }

    [Fact]
    public async Task Orphan_scan_records_a_failing_check_as_an_error_and_still_runs_the_others()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        await _db.TamperAsync("UPDATE trading.accounts SET balance = balance + 1 WHERE user_id = @User", new { User = user });
        // One check's function is gone.
        await _db.AdminAsync(c => c.ExecuteAsync("ALTER FUNCTION trading.margin_mismatches(uuid) RENAME TO margin_mismatches_gone"));

        var run = await Job().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Failed, run.Status);
        Assert.Equal("checks failed: margin_mismatches", run.Error);
        Assert.Contains("42883", (string?)run.Findings["errors"]!["margin_mismatches"], StringComparison.Ordinal);
        Assert.Single(Rows(run, "ledger_mismatches"));
        Assert.Empty(Rows(run, "execution_log_chain_breaks"));
        Assert.Equal(JobRun.Failed, (await _db.RunAsync(run.RunId)).Status);
    }

    [Fact]
    public async Task Orphan_scan_closes_a_stop_and_stops_out_an_account_that_no_price_update_acted_on()
    {
        // Arrange: a long with stop_loss 95 and a thinly funded long without stops (1 at 100 on 10.2 of cash), then
        // a price written past the routes, so no risk work was queued.
        var symbol = await _db.NewInstrumentAsync();
        var stopped = await _db.NewTraderAsync(1_000m);
        var thin = await _db.NewTraderAsync(10.2m);
        var opened = await _db.Orders.CallAsync(Core.Data.DbRole.Api, stopped,
            "SELECT trading.execute_order(@Symbol, 'buy', 'market', 1, NULL, @Key, 'stop', NULL, 95, NULL)::text",
            new { Symbol = symbol, Key = Guid.NewGuid().ToString() }, Core.Data.Writes.Idempotently, CancellationToken.None);
        Assert.True((bool?)opened["success"], opened.ToJsonString());
        await _db.ExecutedOrderAsync(thin, symbol, "buy", 1m);
        await _db.AdminAsync(c => c.ExecuteAsync("UPDATE trading.instruments SET last_price = 90 WHERE symbol = @Symbol", new { Symbol = symbol }));

        // Act
        var run = await Job().RunAsync("test", CancellationToken.None);

        // Assert: closed by the backstop, and the run says so.
        Assert.Equal(JobRun.Succeeded, run.Status);
        var closes = await _db.AdminAsync(c => c.QueryAsync<(Guid User, string Type, decimal Price)>(
            "SELECT user_id, type, executed_price FROM trading.orders WHERE source = 'system' AND symbol = @Symbol", new { Symbol = symbol }));
        Assert.Equal([(thin, "liquidation", 90m), (stopped, "stop_loss", 90m)], closes.OrderBy(c => c.Type, StringComparer.Ordinal));
        Assert.Equal(2, (long?)run.Findings["counts"]![OrphanScanJob.RiskBackstop]);
        var report = Assert.Single(Rows(run, OrphanScanJob.RiskBackstop))!;
        Assert.Equal((1, 1), ((int?)report["closed"]!["stop_loss"], (int?)report["closed"]!["liquidation"]));
        Assert.Empty(Rows(run, "ledger_mismatches"));
        Assert.Empty(Rows(run, "write_off_mismatches"));
    }

    [Fact]
    public async Task Orphan_scan_reports_a_write_off_whose_ledger_entry_is_gone()
    {
        // A close whose loss exceeds the balance (1 at 100 on 20, closed at 70), then its write-off entry deleted
        // behind the triggers' back.
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(20m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        await _db.AdminAsync(c => c.ExecuteAsync("UPDATE trading.instruments SET last_price = 70 WHERE symbol = @Symbol", new { Symbol = symbol }));
        var close = await _db.ExecutedOrderAsync(user, symbol, "sell", 1m);
        Assert.Equal(10.17m, (decimal?)close["data"]!["write_off"]);
        await _db.TamperAsync("DELETE FROM trading.write_offs WHERE user_id = @User", new { User = user });

        var run = await Job().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        var mismatch = Assert.Single(Rows(run, "write_off_mismatches"))!;
        Assert.Equal((user.ToString(), (string?)close["data"]!["order_id"]), ((string?)mismatch["user_id"], (string?)mismatch["order_id"]));
        Assert.Equal(1, (long?)run.Findings["counts"]!["write_off_mismatches"]);
        Assert.Empty(Rows(run, "ledger_mismatches"));
    }

    private static List<JsonNode?> Rows(JobRun run, string check) => [.. run.Findings[check]!.AsArray()];
}

/// <summary>A database where everything happened through the stored functions: the scan finds nothing.</summary>
public sealed class OrphanScanCleanDatabaseTests : IAsyncLifetime
{
    private JobsDatabase _db = null!;

    public async Task InitializeAsync() => _db = await JobsDatabase.CreateAsync();

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Fact]
    public async Task Orphan_scan_reports_nothing_when_every_change_went_through_the_stored_functions()
    {
        // Arrange: opens, adds, partial and full closes, a flip, a rejection and a rollback on two accounts.
        var symbol = await _db.NewInstrumentAsync();
        var other = await _db.NewInstrumentAsync(lastPrice: 20m);
        var alice = await _db.NewTraderAsync(10_000m);
        var bob = await _db.NewTraderAsync(5_000m);
        await _db.ExecutedOrderAsync(alice, symbol, "buy", 2m);
        await _db.ExecutedOrderAsync(alice, symbol, "buy", 1m);
        await _db.ExecutedOrderAsync(alice, symbol, "sell", 1.5m);
        await _db.ExecutedOrderAsync(alice, other, "sell", 3m);
        await _db.ExecutedOrderAsync(bob, symbol, "sell", 1m);
        await _db.ExecutedOrderAsync(bob, symbol, "buy", 3m);
        var rejected = await _db.ExecuteOrderAsync(bob, symbol, "buy", 1_000_000m);
        Assert.Equal(400, (int?)rejected["status"]);
        var last = await _db.ExecutedOrderAsync(bob, other, "buy", 1m);
        var rollback = await _db.Orders.CallAsync(Core.Data.DbRole.Maintenance, bob, "SELECT trading.rollback_order_execution(@Id, 'test')::text",
            new { Id = Guid.Parse((string)last["data"]!["order_id"]!) }, Core.Data.Writes.NotIdempotently, CancellationToken.None);
        Assert.True((bool?)rollback["success"], rollback.ToJsonString());

        // Act
        var run = await new OrphanScanJob(_db.Orders, new MaintenanceSettings(), _db.Risk(), JobsDatabase.NoPublishedHeads, NullLogger<OrphanScanJob>.Instance).RunAsync("test", CancellationToken.None);

        // Assert
        Assert.Equal(JobRun.Succeeded, run.Status);
        Assert.Null(run.Error);
        Assert.Null(run.Findings["errors"]);
        var counts = run.Findings["counts"]!.AsObject();
        Assert.Equal(
            [OrphanScanJob.StuckOrders, OrphanScanJob.RiskBackstop, .. OrphanScanJob.Checks.Select(c => c.Name), OrphanScanJob.PublishedHeadMismatches],
            counts.Select(c => c.Key));
        Assert.All(counts, c => Assert.Equal(0L, (long?)c.Value));
        Assert.All(OrphanScanJob.Checks, c => Assert.Empty(run.Findings[c.Name]!.AsArray()));
    }
}
