using System.Globalization;
using Dapper;
using OrderFunctions.Reliability.Tests.Support;
using Xunit.Abstractions;

namespace OrderFunctions.Reliability.Tests;

/// <summary>
/// Orders through the HTTP API from concurrent clients while a saboteur terminates the application's database
/// backends mid-transaction, some clients give up on requests after a few milliseconds and every client
/// retries with the same Idempotency-Key until it gets a definitive answer (<see cref="FaultRun"/>; it runs once
/// per class and each test judges one property of it).
/// </summary>
public class OrdersUnderFaultsTests(FaultRunFixture fixture, ITestOutputHelper output) : IClassFixture<FaultRunFixture>
{
    private static readonly string[] BusinessRejections = ["INSUFFICIENT_BALANCE", "INSUFFICIENT_MARGIN", "PRICE_NOT_MARKETABLE", "INSTRUMENT_NOT_TRADABLE"];

    [Fact]
    public async Task The_saboteur_and_the_impatient_clients_really_cause_faults()
    {
        var run = await RunAsync();

        Assert.True(run.Kills > 0, "the saboteur terminated no backend: nothing was proved about faults");
        Assert.Contains(run.Attempts, a => a.Cancelled);
        Assert.Contains(run.Attempts, a => a.Status >= 500 || a.Replayed);
    }

    [Fact]
    public async Task Every_key_ends_with_exactly_one_order_and_every_answer_for_it_names_that_order()
    {
        var run = await RunAsync();

        var byKey = run.Stored.GroupBy(o => (o.UserId, o.IdempotencyKey)).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(run.Orders.Count, byKey.Count);
        foreach (var order in run.Orders)
        {
            Assert.True(byKey.TryGetValue((order.Trader, order.Key), out var rows) && rows.Count == 1,
                $"key {order.Key} has {rows?.Count ?? 0} orders: {order}");
            var row = rows![0];
            Assert.True(order.Final is not null, $"key {order.Key} never got a definitive answer: {order}");
            foreach (var answer in order.Attempts.Where(a => a.IsDefinitive))
            {
                Assert.True(answer.OrderId == row.Id, $"key {order.Key}: an answer names order {answer.OrderId}, the database holds {row.Id}: {answer.Body}");
                var status = answer.Status is 200 or 201 ? "executed" : "rejected";
                Assert.True(row.Status == status, $"key {order.Key}: answered {answer.Status} {answer.ErrorCode} but the order is {row.Status}");
            }
        }
    }

    [Fact]
    public async Task A_key_asked_again_after_its_answer_replays_that_answer()
    {
        var run = await RunAsync();

        var repeats = 0;
        foreach (var order in run.Orders)
        {
            foreach (var later in order.Attempts.SkipWhile(a => !a.IsDefinitive).Skip(1).Where(a => a.IsDefinitive))
            {
                repeats++;
                Assert.True(later.Replayed, $"key {order.Key}: a repeat after the answer was not a replay: {later.Body}");
                Assert.True(later.Status == (order.Final!.Status == 201 ? 200 : order.Final.Status),
                    $"key {order.Key}: first answered {order.Final.Status}, the replay {later.Status}");
            }
        }

        Assert.True(repeats > 0, "no client asked again after an answer");
    }

    [Fact]
    public async Task Every_keyed_deposit_is_credited_once_and_its_repeats_replay_it()
    {
        var run = await RunAsync();
        await using var db = new TradingDatabase(fixture);

        Assert.NotEmpty(run.KeyedDepositRequests);
        foreach (var deposit in run.KeyedDepositRequests)
        {
            // 200 when the server's own retry after a lost connection found the deposit already done.
            Assert.True(deposit.Final?.Status is 200 or 201, $"deposit {deposit.Key} did not end as done: {deposit}");
            Assert.All(deposit.Attempts.SkipWhile(a => !a.IsDefinitive).Skip(1).Where(a => a.IsDefinitive),
                later => Assert.True(later.Status == 200 && later.Replayed, $"deposit {deposit.Key}: a repeat was not a replay: {later.Body}"));
        }

        // Exactly one audit row per deposit: none applied twice, none lost (the balances are judged below).
        var audited = await db.AdminAsync(c => c.ExecuteScalarAsync<long>(
            "SELECT count(*) FROM trading.balance_audit_log WHERE reason LIKE 'fault-run deposit %' AND user_id = ANY(@traders)",
            new { traders = run.Deposits.Keys.ToArray() }));
        Assert.Equal(run.KeyedDepositRequests.Count, audited);
    }

    [Fact]
    public async Task Money_is_conserved_and_every_integrity_and_chain_check_passes_after_the_faults()
    {
        var run = await RunAsync();
        await using var db = new TradingDatabase(fixture);

        await db.AssertMoneyConservedAsync(run.Deposits);
        await db.AssertConsistentAsync(run.Stored.Select(o => (o.UserId, o.TransactionId)));
    }

    [Fact]
    public async Task Faults_reach_clients_only_as_503_or_a_retry_never_as_500_or_an_unknown_error()
    {
        var run = await RunAsync();

        var unexpected = run.Attempts.Concat(run.PriceMoves).Concat(run.KeyedDepositRequests.SelectMany(d => d.Attempts))
            .Where(a => !a.Cancelled && !(a.Status is 200 or 201 || (a.Status == 503 && a.ErrorCode == "SERVICE_UNAVAILABLE") || BusinessRejections.Contains(a.ErrorCode)))
            .ToList();
        foreach (var entry in fixture.Logs.Entries.Where(e => e.StartsWith("Error", StringComparison.Ordinal) && !e.Contains("DatabaseUnavailableException", StringComparison.Ordinal)).Take(3))
        {
            output.WriteLine(entry);
        }

        Assert.True(unexpected.Count == 0,
            $"{unexpected.Count} answers other than success, a business rejection or 503 SERVICE_UNAVAILABLE, e.g.:\n"
            + string.Join("\n", unexpected.Take(3).Select(a => a.Exception?.ToString() ?? $"{a.Status} {a.Body}")));
    }

    private async Task<FaultRun> RunAsync()
    {
        var run = await fixture.Run;
        output.WriteLine(run.Summary);
        return run;
    }
}

/// <summary>
/// <see cref="OrdersUnderFaultsTests"/> with the app behind PgBouncer in transaction pooling mode, as in Azure: a
/// terminated backend is then a PgBouncer server connection dying under a client's transaction.
/// </summary>
public sealed class OrdersUnderFaultsThroughPgBouncerTests(PgBouncerFaultRunFixture fixture, ITestOutputHelper output)
    : OrdersUnderFaultsTests(fixture, output), IClassFixture<PgBouncerFaultRunFixture>;
