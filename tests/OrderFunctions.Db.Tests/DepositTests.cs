using Dapper;
using Npgsql;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>
/// trading.deposit: money enters through the audited path once per Idempotency-Key, whatever repeats the call.
/// </summary>
public sealed class DepositTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private const string DepositSql = "SELECT trading.deposit(@amount, @reason, @key, @fingerprint)::text";

    private readonly Trading _trading = new(database);

    [Fact]
    public async Task A_keyed_deposit_opens_the_account_and_its_repeat_replays_without_moving_money()
    {
        var user = Guid.NewGuid();

        var first = await DepositAsync(user, 250.5m, "k1", "f-250.5");
        var replay = await DepositAsync(user, 250.5m, "k1", "f-250.5");

        Assert.True(first.Success, first.Json);
        Assert.False(first.Replayed);
        Assert.Equal(201, first.Status);
        Assert.True(first.Bool("created"));
        Assert.True(replay.Replayed);
        Assert.Equal(first.Data.GetRawText(), replay.Data.GetRawText());
        Assert.Equal(first.Timestamp, replay.Timestamp);
        Assert.Equal(250.5m, (await _trading.ExistingAccountAsync(user)).Balance);
        var audit = Assert.Single(await _trading.AuditAsync(user));
        Assert.Equal(first.Guid("transaction_id"), audit.TransactionId);
        Assert.Equal(1, await KeysAsync(user));
    }

    [Fact]
    public async Task A_second_key_is_a_second_deposit_and_keys_belong_to_one_trader()
    {
        var user = await _trading.NewTraderAsync(100m);
        var other = await _trading.NewTraderAsync(100m);

        var first = await DepositAsync(user, 10m, "same-key", "f-10");
        var second = await DepositAsync(user, 10m, "another-key", "f-10");
        var otherTrader = await DepositAsync(other, 10m, "same-key", "f-10");

        Assert.All([first, second, otherTrader], r => Assert.False(r.Replayed, r.Json));
        Assert.Equal(120m, (await _trading.ExistingAccountAsync(user)).Balance);
        Assert.Equal(110m, (await _trading.ExistingAccountAsync(other)).Balance);
    }

    [Fact]
    public async Task Reusing_a_key_for_another_amount_is_refused_and_changes_nothing()
    {
        var user = Guid.NewGuid();
        var first = await DepositAsync(user, 100m, "k", "f-100");
        var account = await _trading.AccountSnapshotAsync(user);
        var counts = await _trading.CountsAsync(user);

        var other = await DepositAsync(user, 1_000m, "k", "f-1000");

        Assert.False(other.Success);
        Assert.Equal(("IDEMPOTENCY_KEY_REUSED", 422), (other.ErrorCode, other.Status));
        Assert.Equal(first.Guid("transaction_id"), other.Guid("transaction_id"));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
        Assert.Equal(counts, await _trading.CountsAsync(user));
    }

    [Fact]
    public async Task A_refused_deposit_stores_no_key_so_the_corrected_request_may_use_it()
    {
        var user = await _trading.NewTraderAsync(100m);

        var zero = await DepositAsync(user, 0m, "k", "f-0");
        var keysAfterRefusal = await KeysAsync(user);
        var corrected = await DepositAsync(user, 5m, "k", "f-5");

        Assert.Equal(("VALIDATION_ERROR", 400), (zero.ErrorCode, zero.Status));
        Assert.Equal("amount", zero.Get("errors")[0].GetProperty("field").GetString());
        Assert.Equal(0, keysAfterRefusal);
        Assert.True(corrected.Success, corrected.Json);
        Assert.False(corrected.Replayed);
        Assert.Equal(105m, (await _trading.ExistingAccountAsync(user)).Balance);
    }

    [Fact]
    public async Task Without_a_key_every_call_is_a_deposit_and_none_is_stored()
    {
        var user = Guid.NewGuid();

        await DepositAsync(user, 1m, null, null);
        await DepositAsync(user, 1m, null, null);

        Assert.Equal(2m, (await _trading.ExistingAccountAsync(user)).Balance);
        Assert.Equal(0, await KeysAsync(user));
    }

    [Fact]
    public async Task Parallel_first_deposits_with_one_key_move_money_once()
    {
        // Twenty callers at once, for a trader who has no account yet: no row exists to lock.
        var user = Guid.NewGuid();
        using var ready = new CountdownEvent(20);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task<Envelope> CallAsync()
        {
            await using var connection = new NpgsqlConnection(database.AppConnectionString);
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await Trading.SetContextAsync(connection, transaction, Trading.Maintenance, user);
            ready.Signal();
            await go.Task;
            var json = await connection.QuerySingleAsync<string>(new CommandDefinition(
                DepositSql, new { amount = 1_000m, reason = "deposit", key = "one-key", fingerprint = "f-1000" }, transaction));
            await transaction.CommitAsync();
            return Envelope.Parse(json);
        }

        var calls = Enumerable.Range(0, 20).Select(_ => Task.Run(CallAsync)).ToList();
        Assert.True(await Task.Run(() => ready.Wait(TimeSpan.FromSeconds(60))), "not every caller opened its transaction");
        go.SetResult();
        var responses = await Task.WhenAll(calls);

        Assert.All(responses, r => Assert.True(r.Success, r.Json));
        Assert.Single(responses, r => !r.Replayed);
        Assert.Single(responses.Select(r => r.Data.GetRawText()).Distinct());
        Assert.Equal(1_000m, (await _trading.ExistingAccountAsync(user)).Balance);
        Assert.Single(await _trading.AuditAsync(user));
        Assert.Equal("[]", await _trading.RowsAsync("trading.ledger_mismatches(@user)", user));
    }

    [Fact]
    public async Task The_api_role_can_neither_deposit_nor_read_deposit_keys()
    {
        var user = Guid.NewGuid();
        await DepositAsync(user, 10m, "k", "f-10");

        var call = await Assert.ThrowsAsync<PostgresException>(() => _trading.CallAsync(Trading.Api, user, DepositSql,
            new { amount = 10m, reason = "deposit", key = "k2", fingerprint = "f-10" }));
        var read = await Assert.ThrowsAsync<PostgresException>(() =>
            _trading.ScalarAsync<long>(Trading.Api, user, "SELECT count(*) FROM trading.deposit_requests"));

        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, call.SqlState);
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, read.SqlState);
        Assert.Equal(10m, (await _trading.ExistingAccountAsync(user)).Balance);
    }

    [Fact]
    public async Task Maintenance_sees_every_trader_s_keys_and_the_owner_only_the_acting_trader_s()
    {
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();
        await DepositAsync(a, 10m, "k", "f-10");
        await DepositAsync(b, 10m, "k", "f-10");

        var seenByMaintenance = await _trading.ScalarAsync<long>(Trading.Maintenance, null,
            "SELECT count(*) FROM trading.deposit_requests WHERE user_id IN (@a, @b)", new { a, b });
        // As the tables' owner (which the definer functions run as) acting for a: forced RLS applies to it too.
        var seenByOwnerForA = await _trading.AdminAsync(async c =>
        {
            await using var transaction = await c.BeginTransactionAsync();
            await c.ExecuteAsync(new CommandDefinition(
                "SELECT set_config('role', 'orders_owner', true), set_config('app.user_id', @a, true)", new { a = a.ToString() }, transaction));
            return await c.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT count(*) FROM trading.deposit_requests WHERE user_id IN (@a, @b)", new { a, b }, transaction));
        });

        Assert.Equal(2, seenByMaintenance);
        Assert.Equal(1, seenByOwnerForA);
    }

    private Task<Envelope> DepositAsync(Guid user, decimal amount, string? key, string? fingerprint) =>
        _trading.CallAsync(Trading.Maintenance, user, DepositSql, new { amount, reason = "deposit", key, fingerprint });

    private Task<long> KeysAsync(Guid user) =>
        _trading.AdminAsync(c => c.ExecuteScalarAsync<long>("SELECT count(*) FROM trading.deposit_requests WHERE user_id = @user", new { user }));
}
