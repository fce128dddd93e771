using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// Incremental verification and tamper evidence that reaches outside the database. The verification functions move
/// each account's chain checkpoint to its head once the rows after the old one verify, and later checks start there;
/// published heads (chain_heads(), as the chain-heads job writes them to the write-once archive) catch an owner who
/// rewrites history, recomputes every hash and moves the checkpoints along.
/// </summary>
public sealed class ChainVerificationTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Verification_moves_each_accounts_checkpoints_to_its_heads_when_its_chains_verify()
    {
        var (trader, _) = await TradingTraderAsync();

        var executionBreaks = await VerifyExecutionLogsAsync();
        var auditBreaks = await VerifyAuditAsync();

        Assert.Empty(executionBreaks);
        Assert.Empty(auditBreaks);
        var checkpoint = await CheckpointAsync(trader);
        var head = await database.AdminScalarAsync<long>("SELECT max(seq) FROM trading.execution_logs WHERE user_id = $1", trader);
        var lastAudit = await database.AdminScalarAsync<long>("SELECT max(id) FROM trading.balance_audit_log WHERE user_id = $1", trader);
        Assert.Equal((head, lastAudit), (checkpoint.ExecutionLogSeq, checkpoint.AuditId));
        Assert.Equal(await database.AdminScalarAsync<byte[]>("SELECT row_hash FROM trading.execution_logs WHERE user_id = $1 AND seq = $2", trader, head),
            checkpoint.ExecutionLogHash);
        Assert.Equal(await database.AdminScalarAsync<decimal>("SELECT balance FROM trading.accounts WHERE user_id = $1", trader), checkpoint.AuditBalance);
    }

    [Fact]
    public async Task A_break_after_the_checkpoint_is_reported_and_holds_that_checkpoint_back()
    {
        var (trader, symbol) = await TradingTraderAsync();
        await VerifyExecutionLogsAsync();
        var before = await CheckpointAsync(trader);
        await _trading.ExecutedOrderAsync(trader, symbol, "sell", 1m);
        await TamperAsync("UPDATE trading.execution_logs SET reason = 'rewritten' WHERE user_id = @trader AND seq = @seq", trader, before.ExecutionLogSeq + 1);

        var breaks = await VerifyExecutionLogsAsync();

        var found = Assert.Single(breaks, b => b.UserId == trader);
        Assert.Equal((before.ExecutionLogSeq + 1, "row_hash does not match the row"), (found.Seq, found.Problem));
        Assert.Equal(before.ExecutionLogSeq, (await CheckpointAsync(trader)).ExecutionLogSeq);
    }

    [Fact]
    public async Task Rows_before_the_checkpoint_are_not_checked_again_but_the_checkpoint_row_itself_is()
    {
        // An owner who rewrites history and recomputes every hash breaks no link; the checkpoint row's hash moved.
        var (trader, _) = await TradingTraderAsync();
        await VerifyExecutionLogsAsync();
        var checkpoint = await CheckpointAsync(trader);
        await OwnerTampering.RewriteAndRehashExecutionLogAsync(database.AdminConnectionString, trader, 1, moveCheckpoint: false);

        var breaks = await VerifyExecutionLogsAsync();

        var found = Assert.Single(breaks, b => b.UserId == trader);
        Assert.Equal((checkpoint.ExecutionLogSeq, "the row verified at this seq is missing or its row_hash has changed"), (found.Seq, found.Problem));
    }

    [Fact]
    public async Task Published_heads_catch_an_owner_who_rehashes_history_and_moves_the_checkpoints_too()
    {
        // Arrange: heads published, then the owner rewrites seq 1, recomputes the chain and re-verifies the checkpoints
        var (trader, _) = await TradingTraderAsync();
        var published = await PublishedHeadsAsync();
        await VerifyExecutionLogsAsync();
        await OwnerTampering.RewriteAndRehashExecutionLogAsync(database.AdminConnectionString, trader, 1);

        // Act: the database's own checks find nothing; the published heads do
        var ownChecks = await VerifyExecutionLogsAsync();
        var mismatches = await MismatchesAsync(published);

        // Assert
        Assert.DoesNotContain(ownChecks, b => b.UserId == trader);
        var found = Assert.Single(mismatches, m => m.UserId == trader);
        Assert.Equal("execution_log", found.Chain);
        Assert.Equal(await database.AdminScalarAsync<long>("SELECT max(seq) FROM trading.execution_logs WHERE user_id = $1", trader), found.Position);
    }

    [Fact]
    public async Task Published_heads_catch_a_rewritten_audit_trail_that_still_chains_and_reconciles()
    {
        // The owner adds 500 to the first deposit and to every audit row and the balance after it: the chain continues
        // and the ledger reconciles, but the last audit row no longer says what was published.
        var (trader, _) = await TradingTraderAsync();
        var published = await PublishedHeadsAsync();
        await TamperAsync("""
            UPDATE trading.balance_audit_log SET balance_before = balance_before + CASE WHEN id = (SELECT min(id) FROM trading.balance_audit_log WHERE user_id = @trader) THEN 0 ELSE 500 END,
                                                 balance_after = balance_after + 500, equity_after = equity_after + 500
            WHERE user_id = @trader AND @seq IS NOT NULL;
            UPDATE trading.accounts SET balance = balance + 500 WHERE user_id = @trader;
            """, trader, 0);

        var ownChecks = await VerifyAuditAsync();
        var ledger = await _trading.ScalarAsync<long>(Trading.Maintenance, null, "SELECT count(*) FROM trading.ledger_mismatches() WHERE user_id = @trader", new { trader });
        var mismatches = await MismatchesAsync(published);

        Assert.DoesNotContain(ownChecks, b => b.UserId == trader);
        Assert.Equal(0, ledger);
        var found = Assert.Single(mismatches, m => m.UserId == trader);
        Assert.Equal("balance_audit", found.Chain);
        Assert.StartsWith("balance ", found.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_integrity_check_names_published_chain_head_when_history_was_rewritten_and_rehashed()
    {
        var (trader, symbol) = await TradingTraderAsync();
        var order = await _trading.ExecutedOrderAsync(trader, symbol, "buy", 1m);
        var head = (await PublishedHeadsAsync()).Single(h => h.Contains(trader.ToString(), StringComparison.Ordinal));
        var published = $$"""{"blob_name": "chain-heads/test.ndjson.gz", "published_at": "2026-12-01T00:00:00Z", "head": {{head}}}""";
        var before = await IntegrityAsync(trader, order.Guid("transaction_id"), published);
        await OwnerTampering.RewriteAndRehashExecutionLogAsync(database.AdminConnectionString, trader, 1);

        var after = await IntegrityAsync(trader, order.Guid("transaction_id"), published);
        var unpublished = await IntegrityAsync(trader, order.Guid("transaction_id"), null);

        Assert.True(before.Get("valid").GetBoolean(), before.Json);
        Assert.False(after.Get("valid").GetBoolean(), after.Json);
        var failed = Assert.Single(after.Get("checks").EnumerateArray(), c => !c.GetProperty("passed").GetBoolean());
        Assert.Equal("published_chain_head", failed.GetProperty("name").GetString());
        Assert.True(unpublished.Get("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "published_chain_head")
            .GetProperty("passed").GetBoolean());
    }

    [Theory]
    [InlineData("INSERT INTO trading.chain_checkpoints (user_id, execution_log_seq) SELECT user_id, 1000000 FROM trading.accounts LIMIT 1")]
    [InlineData("UPDATE trading.chain_checkpoints SET execution_log_seq = 1000000")]
    public async Task Maintenance_cannot_place_a_checkpoint_itself(string sql)
    {
        await TradingTraderAsync();
        await VerifyExecutionLogsAsync();

        var e = await Assert.ThrowsAsync<PostgresException>(() => _trading.ScalarAsync<long>(Trading.Maintenance, null, sql + " RETURNING 1"));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, e.SqlState);
    }

    private async Task<(Guid Trader, string Symbol)> TradingTraderAsync()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var trader = await _trading.NewTraderAsync(10_000m);
        await _trading.ExecutedOrderAsync(trader, instrument.Symbol, "buy", 2m);
        await _trading.ExecutedOrderAsync(trader, instrument.Symbol, "sell", 1m);
        await _trading.DepositAsync(trader, 50m);
        return (trader, instrument.Symbol);
    }

    private Task<List<Break>> VerifyExecutionLogsAsync() => _trading.InTransactionAsync(Trading.Maintenance, null, async (c, t) =>
        (await c.QueryAsync<Break>(new CommandDefinition("SELECT user_id, seq, problem FROM trading.verify_execution_log_chains()", transaction: t))).ToList());

    private Task<List<Break>> VerifyAuditAsync() => _trading.InTransactionAsync(Trading.Maintenance, null, async (c, t) =>
        (await c.QueryAsync<Break>(new CommandDefinition("SELECT user_id, audit_id AS seq, problem FROM trading.verify_balance_audit_chains()", transaction: t))).ToList());

    private Task<List<string>> PublishedHeadsAsync() => _trading.InTransactionAsync(Trading.Maintenance, null, async (c, t) =>
        (await c.QueryAsync<string>(new CommandDefinition("SELECT line FROM trading.chain_heads()", transaction: t))).ToList());

    private Task<List<Mismatch>> MismatchesAsync(List<string> heads) => _trading.InTransactionAsync(Trading.Maintenance, null, async (c, t) =>
        (await c.QueryAsync<Mismatch>(new CommandDefinition(
            "SELECT user_id, chain, \"position\", problem FROM trading.published_head_mismatches(@Heads::jsonb)",
            new { Heads = "[" + string.Join(",", heads) + "]" }, t))).ToList());

    private async Task<Envelope> IntegrityAsync(Guid trader, Guid transactionId, string? published)
    {
        var envelope = await _trading.CallAsync(Trading.Api, trader, "SELECT trading.validate_transaction_integrity(@transactionId, @published::jsonb)::text",
            new { transactionId, published });
        Assert.True(envelope.Success, envelope.Json);
        return envelope;
    }

    private Task<CheckpointRow> CheckpointAsync(Guid trader) => _trading.AdminAsync(c => c.QuerySingleAsync<CheckpointRow>(
        "SELECT execution_log_seq, execution_log_hash, audit_id, audit_balance FROM trading.chain_checkpoints WHERE user_id = @trader", new { trader }));

    private async Task TamperAsync(string sql, Guid trader, long seq)
    {
        await using var connection = await database.OpenAdminConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(new CommandDefinition("SET LOCAL session_replication_role = replica", transaction: transaction));
        await connection.ExecuteAsync(new CommandDefinition(sql, new { trader, seq }, transaction));
        await transaction.CommitAsync();
    }

    private sealed record Break(Guid UserId, long Seq, string Problem);

    private sealed record Mismatch(Guid UserId, string Chain, long Position, string Problem);

    private sealed record CheckpointRow(long ExecutionLogSeq, byte[] ExecutionLogHash, long AuditId, decimal AuditBalance);
}
