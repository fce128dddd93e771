using Dapper;
using OrderFunctions.Db.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Db.Tests;

/// <summary>Idempotency keys on execute_order: once execution began, its outcome is stored with the key and replayed.</summary>
public sealed class IdempotencyTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private readonly Trading _trading = new(database);

    [Fact]
    public async Task Replaying_a_key_with_the_same_request_returns_the_stored_response()
    {
        // Arrange
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var key = Guid.NewGuid().ToString();
        var first = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 2m, key: key);
        var balance = (await _trading.ExistingAccountAsync(user)).Balance;

        // Act: the same request again, after the price moved (a new execution would differ).
        await _trading.UpsertAsync(instrument with { LastPrice = 101m });
        var replay = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 2m, key: key);

        // Assert
        Assert.True(first.Success, first.Json);
        Assert.False(first.Replayed);
        Assert.True(replay.Success, replay.Json);
        Assert.True(replay.Replayed);
        Assert.Equal(first.Status, replay.Status);
        Assert.Equal(first.Data.GetRawText(), replay.Data.GetRawText());
        Assert.Equal(first.Timestamp, replay.Timestamp);
        Assert.Single(await _trading.OrdersAsync(user));
        Assert.Single(await _trading.FillsAsync(user));
        Assert.Equal(balance, (await _trading.ExistingAccountAsync(user)).Balance);
    }

    [Fact]
    public async Task Reusing_a_key_for_another_request_is_refused()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var key = Guid.NewGuid().ToString();
        var first = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 2m, key: key, fingerprint: "buy-2");
        var before = await _trading.CountsAsync(user);
        var account = await _trading.AccountSnapshotAsync(user);

        var other = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 3m, key: key, fingerprint: "buy-3");

        Assert.False(other.Success);
        Assert.Equal(("IDEMPOTENCY_KEY_REUSED", 422), (other.ErrorCode, other.Status));
        Assert.Equal(first.Guid("order_id"), other.Guid("order_id"));
        Assert.Equal(before, await _trading.CountsAsync(user));
        Assert.Equal(account, await _trading.AccountSnapshotAsync(user));
    }

    [Fact]
    public async Task A_business_rejection_is_stored_and_replayed_too()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(10m);
        var key = Guid.NewGuid().ToString();
        var rejected = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 5m, key: key);
        await _trading.DepositAsync(user, 1_000m);

        // Funds arrived, but the key already carries an outcome.
        var replay = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 5m, key: key);

        Assert.Equal(("INSUFFICIENT_MARGIN", 400), (rejected.ErrorCode, rejected.Status));
        Assert.True(replay.Replayed);
        Assert.Equal(("INSUFFICIENT_MARGIN", 400), (replay.ErrorCode, replay.Status));
        Assert.Equal(rejected.Guid("order_id"), replay.Guid("order_id"));
        Assert.Single(await _trading.OrdersAsync(user));
        Assert.Empty(await _trading.PositionsAsync(user));
    }

    [Fact]
    public async Task A_request_refused_by_validation_stores_nothing_and_the_key_may_be_retried()
    {
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var key = Guid.NewGuid().ToString();
        var before = await _trading.CountsAsync(user);

        // 0.015 is off the instrument's 0.01 quantity step.
        var invalid = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 0.015m, key: key);
        var counts = await _trading.CountsAsync(user);
        var corrected = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 0.02m, key: key);

        Assert.Equal(("VALIDATION_ERROR", 400), (invalid.ErrorCode, invalid.Status));
        Assert.Equal("quantity", invalid.Get("errors")[0].GetProperty("field").GetString());
        Assert.Equal(before, counts);
        Assert.True(corrected.Success, corrected.Json);
        Assert.False(corrected.Replayed);
    }

    [Fact]
    public async Task A_key_whose_order_is_still_unfinished_is_in_use_and_nothing_is_written()
    {
        // Arrange: an order left in 'executing' under the key, as only a crash (or the admin) can leave it.
        var instrument = await _trading.NewInstrumentAsync(1m, 0.1m, 0.001m, 100m);
        var user = await _trading.NewTraderAsync(1_000m);
        var key = Guid.NewGuid().ToString();
        await _trading.AdminAsync(c => c.ExecuteAsync(
            """
            INSERT INTO trading.orders (user_id, symbol, side, type, quantity, status, transaction_id, idempotency_key, request_fingerprint)
            VALUES (@user, @symbol, 'buy', 'market', 1, 'executing', gen_random_uuid(), @key, 'same-request')
            """, new { user, symbol = instrument.Symbol, key }));
        var before = await _trading.CountsAsync(user);

        // Act
        var response = await _trading.ExecuteOrderAsync(user, instrument.Symbol, "buy", 1m, key: key, fingerprint: "same-request");

        // Assert: 409 as the IETF Idempotency-Key draft has it for a request still in flight; retrying later is fine.
        Assert.False(response.Success);
        Assert.Equal(("IDEMPOTENCY_KEY_IN_USE", 409), (response.ErrorCode, response.Status));
        Assert.Equal("executing", response.String("status"));
        Assert.Equal(before, await _trading.CountsAsync(user));
    }
}
