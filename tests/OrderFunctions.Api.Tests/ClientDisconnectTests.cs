using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Npgsql;
using OrderFunctions.Api.Tests.Support;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// A client that goes away: the host cancels the invocation (LocalHost: the request's RequestAborted; the Functions
/// host: an InvocationCancel to the worker, whose FunctionContext token then fires), the database command is
/// cancelled, and nothing the client asked for happens.
/// </summary>
public sealed class ClientDisconnectTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task An_order_whose_client_went_away_while_it_waited_for_the_account_stops_waiting_and_executes_nothing()
    {
        var instrument = await api.NewInstrumentAsync(lastPrice: 100m);
        var trader = await api.NewTraderAsync(10_000m);
        var token = ApiFixture.TokenFor(trader);
        var key = Guid.NewGuid().ToString();
        var order = new { symbol = instrument.Symbol, side = "buy", type = "market", quantity = 1m };

        // Arrange: another transaction holds the account's turn, so the order waits inside execute_order.
        await using var holder = await api.OpenAdminConnectionAsync();
        await using var hold = await holder.BeginTransactionAsync();
        await using (var take = new NpgsqlCommand("SELECT trading.wait_for_account_turn($1)", holder, hold) { Parameters = { new() { Value = trader } } })
        {
            await take.ExecuteNonQueryAsync();
        }

        using var client = api.CreateClient();
        using var gone = new CancellationTokenSource();
        // A body of known length: the Functions host refuses a chunked one (411).
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/orders")
        {
            Content = new StringContent(JsonSerializer.Serialize(order), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Idempotency-Key", key);
        var call = client.SendAsync(request, gone.Token);
        await api.WaitUntilWaitingOnALockAsync("execute_order", call, "advisory");

        // Act: the client goes away.
        await gone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);

        // Assert: the database stops running it (cancelled, not left queued behind the lock) while the lock is held ...
        await api.WaitUntilNoBackendRunsAsync("execute_order", "the client went away, and the cancellation never reached the database\n"
                                                                + api.Host.Diagnostics());
        await hold.CommitAsync();

        // ... nothing was executed, and the key is free for the client's retry.
        Assert.Equal(0, await api.CountAsync("FROM trading.orders WHERE user_id = $1", trader));
        var retry = await api.PlaceOrderAsync(token, order, key);
        retry.AssertSuccess(201);
        Assert.Null(retry.Header("Idempotent-Replayed"));
    }
}
