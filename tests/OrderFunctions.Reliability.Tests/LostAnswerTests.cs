using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Testing;

namespace OrderFunctions.Reliability.Tests;

/// <summary>
/// What the API answers when the database ran a write but its answer never reached the app. A loopback TCP proxy
/// between LocalHost and PostgreSQL (<see cref="PostgresProxy"/>) drops or holds the server's reply after the
/// transaction ended, or plays a server restart right after the commit. The answer must never claim "nothing was
/// changed" then; a keyed write is repeated by the server itself across a restart, and by the client with the same
/// key, and money moves once.
/// </summary>
public sealed class LostAnswerTests(DatabaseFixture database) : IClassFixture<DatabaseFixture>
{
    private const string ExecuteOrder = "trading.execute_order(";
    private const string Rollback = "trading.rollback_order_execution(";
    private const decimal Deposit = 10_000m;

    private static readonly AuthSettings Auth = new()
    {
        Issuer = "orderfunctions-lost-answer-tests",
        Audience = "orderfunctions-api",
        SigningKey = "lost-answer-tests-signing-key-0123456789-abcdef",
        Authority = "",
    };

    [Fact]
    public async Task An_order_whose_every_answer_is_lost_after_the_commit_is_503_outcome_unknown_and_its_repeat_replays_it_once()
    {
        // Arrange
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var host = Host(proxy, maxRetries: 2);
        var (trader, symbol) = await ArrangeAsync(host);
        var key = Guid.NewGuid().ToString();
        proxy.LoseReplies(ExecuteOrder, ReplyFault.Drop, count: int.MaxValue);

        // Act
        var lost = await PlaceOrderAsync(host, trader, symbol, key);
        proxy.StopLosingReplies();
        var repeated = await PlaceOrderAsync(host, trader, symbol, key);

        // Assert: the first answer says the outcome is unknown and how to learn it; the server tried each time
        AssertOutcomeUnknown(lost, repeatIsSafe: true);
        Assert.Contains("same Idempotency-Key", lost.Message, StringComparison.Ordinal);
        Assert.Equal(3, proxy.LostReplies);
        // the repeat replays the order the first attempt executed, and money moved once
        Assert.Equal((200, true), (repeated.Status, repeated.Replayed));
        await AssertExecutedOnceAsync(trader, key, repeated);
    }

    [Fact]
    public async Task An_order_whose_answer_never_comes_before_the_command_timeout_is_503_outcome_unknown_not_504_nothing_changed()
    {
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var host = Host(proxy, maxRetries: 2, commandTimeoutSeconds: 1);
        var (trader, symbol) = await ArrangeAsync(host);
        var key = Guid.NewGuid().ToString();
        proxy.LoseReplies(ExecuteOrder, ReplyFault.Hold);

        var timedOut = await PlaceOrderAsync(host, trader, symbol, key);
        var repeated = await PlaceOrderAsync(host, trader, symbol, key);

        // The server committed; only the client gave up waiting. A timed-out write is not repeated by the server: one
        // still running would queue behind its own repeat on the account lock.
        AssertOutcomeUnknown(timedOut, repeatIsSafe: true);
        Assert.Equal(1, proxy.LostReplies);
        Assert.Equal((200, true), (repeated.Status, repeated.Replayed));
        await AssertExecutedOnceAsync(trader, key, repeated);
    }

    [Fact]
    public async Task A_keyed_order_whose_server_restarts_right_after_the_commit_is_answered_by_the_servers_own_retry_and_moves_money_once()
    {
        // Arrange: the default retries; the reply is dropped, then for 0.8 s every connection is refused with 57P03,
        // as PostgreSQL refuses them during crash recovery (about 0.5 s measured on these machines).
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var host = Host(proxy, maxRetries: null);
        var (trader, symbol) = await ArrangeAsync(host);
        var key = Guid.NewGuid().ToString();
        proxy.LoseReplies(ExecuteOrder, ReplyFault.Drop, thenRestartFor: TimeSpan.FromMilliseconds(800));

        // Act
        var answer = await PlaceOrderAsync(host, trader, symbol, key);

        // Assert: the client never saw the restart; the retry found the committed order and replayed it
        Assert.Equal(1, proxy.LostReplies);
        Assert.True(answer.Status == 200 && answer.Replayed, $"expected the replayed order, got {answer.Status}: {answer.Body}");
        await AssertExecutedOnceAsync(trader, key, answer);
    }

    [Fact]
    public async Task A_rollback_whose_answer_is_lost_is_503_outcome_unknown_not_repeated_and_says_to_check_first()
    {
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var host = Host(proxy, maxRetries: 3);
        var (trader, symbol) = await ArrangeAsync(host);
        var order = await PlaceOrderAsync(host, trader, symbol, Guid.NewGuid().ToString());
        var orderId = order.Data.GetProperty("order_id").GetGuid();
        proxy.LoseReplies(Rollback, ReplyFault.Drop, count: int.MaxValue);

        var lost = await SendAsync(host, HttpMethod.Post, $"/api/orders/{orderId}/rollback", Token(Guid.NewGuid(), admin: true), """{"reason":"lost answer"}""");

        AssertOutcomeUnknown(lost, repeatIsSafe: false);
        Assert.Equal(1, proxy.LostReplies);
        Assert.Equal("rolled_back", await database.AdminScalarAsync<string>("SELECT status FROM trading.orders WHERE id = $1", orderId));
    }

    [Fact]
    public async Task A_read_whose_answers_are_lost_is_503_unavailable_and_says_nothing_was_changed()
    {
        await using var proxy = PostgresProxy.Start(database.AppConnectionString);
        await using var host = Host(proxy, maxRetries: 1);
        var (trader, _) = await ArrangeAsync(host);
        proxy.LoseReplies("trading.accounts", ReplyFault.Drop, count: int.MaxValue);

        var lost = await SendAsync(host, HttpMethod.Get, "/api/accounts/me", Token(trader), body: null);

        Assert.Equal((503, "SERVICE_UNAVAILABLE", "not_applied"), (lost.Status, lost.ErrorCode, lost.Data.GetProperty("outcome").GetString()));
        Assert.Equal("1", lost.RetryAfter);
        Assert.Equal(2, proxy.LostReplies);
    }

    private static void AssertOutcomeUnknown(Answer answer, bool repeatIsSafe)
    {
        Assert.True(answer.Status == 503 && answer.ErrorCode == "SERVICE_UNAVAILABLE", $"expected 503 SERVICE_UNAVAILABLE, got {answer.Status}: {answer.Body}");
        Assert.Equal("unknown", answer.Data.GetProperty("outcome").GetString());
        Assert.Equal(repeatIsSafe, answer.Data.GetProperty("repeat_is_safe").GetBoolean());
        Assert.DoesNotContain("nothing was changed", answer.Message, StringComparison.Ordinal);
        Assert.Contains("may or may not have been applied", answer.Message, StringComparison.Ordinal);
    }

    /// <summary>One order for the key, executed, named by the answer, and its money moved exactly once.</summary>
    private async Task AssertExecutedOnceAsync(Guid trader, string key, Answer answer)
    {
        Assert.Equal(1L, await database.AdminScalarAsync<long>("SELECT count(*) FROM trading.orders WHERE user_id = $1", trader));
        var (orderId, commission) = (await database.AdminScalarAsync<Guid>(
            "SELECT id FROM trading.orders WHERE user_id = $1 AND idempotency_key = $2 AND status = 'executed'", trader, key),
            await database.AdminScalarAsync<decimal>("SELECT commission FROM trading.orders WHERE user_id = $1", trader));
        Assert.Equal(orderId, answer.Data.GetProperty("order_id").GetGuid());
        Assert.Equal(1L, await database.AdminScalarAsync<long>("SELECT count(*) FROM trading.balance_audit_log WHERE user_id = $1 AND order_id = $2", trader, orderId));
        Assert.Equal(Deposit - commission, await database.AdminScalarAsync<decimal>("SELECT balance FROM trading.accounts WHERE user_id = $1", trader));
    }

    private static WebApplicationFactory<Program> Host(PostgresProxy proxy, int? maxRetries, int commandTimeoutSeconds = 15)
    {
        // A short cancellation timeout: after a command timeout Npgsql waits this long for the server to confirm it.
        var connectionString = proxy.ConnectionString + ";Cancellation Timeout=500";
        return new WebApplicationFactory<Program>().WithWebHostBuilder(host =>
        {
            host.UseSetting("Database:ConnectionString", connectionString);
            host.UseSetting("Database:CommandTimeoutSeconds", commandTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (maxRetries is { } retries)
            {
                host.UseSetting("Database:MaxRetries", retries.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            host.UseSetting("Auth:Issuer", Auth.Issuer);
            host.UseSetting("Auth:Audience", Auth.Audience);
            host.UseSetting("Auth:SigningKey", Auth.SigningKey);
            host.UseSetting("Auth:Authority", "");
            foreach (var job in MaintenanceJobs.All)
            {
                host.UseSetting(job.ScheduleSetting, "0 0 0 1 * *");
            }

            host.ConfigureLogging(logging => logging.ClearProviders());
        });
    }

    private static string Token(Guid user, bool admin = false) => DevTokens.Create(Auth, user, admin);

    /// <summary>A funded trader and an instrument of this test's own, through the API.</summary>
    private static async Task<(Guid Trader, string Symbol)> ArrangeAsync(WebApplicationFactory<Program> host)
    {
        var admin = Token(Guid.NewGuid(), admin: true);
        var trader = Guid.NewGuid();
        var symbol = "LA" + Guid.NewGuid().ToString("N")[..10].ToUpperInvariant();
        var upsert = await SendAsync(host, HttpMethod.Put, "/api/admin/instruments", admin, $$"""
            {"instruments": [{"symbol": "{{symbol}}", "contract_size": 1, "margin_rate": 0.1, "commission_rate": 0.001,
                              "min_qty": 0.01, "qty_step": 0.01, "tick_size": 0.01, "last_price": 100}]}
            """);
        Assert.Equal(200, upsert.Status);
        var deposit = await SendAsync(host, HttpMethod.Post, $"/api/admin/accounts/{trader}/deposits", admin, $$"""{"amount": {{Deposit}}}""",
            Guid.NewGuid().ToString());
        Assert.Equal(201, deposit.Status);
        return (trader, symbol);
    }

    private static Task<Answer> PlaceOrderAsync(WebApplicationFactory<Program> host, Guid trader, string symbol, string key) =>
        SendAsync(host, HttpMethod.Post, "/api/orders", Token(trader), $$"""{"symbol": "{{symbol}}", "side": "buy", "type": "market", "quantity": 1}""", key);

    private static async Task<Answer> SendAsync(WebApplicationFactory<Program> host, HttpMethod method, string path, string token, string? body,
        string? idempotencyKey = null)
    {
        using var client = host.CreateClient();
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var json = JsonDocument.Parse(text);
        return new Answer((int)response.StatusCode, text, json.RootElement.Clone(),
            response.Headers.TryGetValues("Idempotent-Replayed", out var replayed) && replayed.Contains("true"),
            response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private sealed record Answer(int Status, string Body, JsonElement Root, bool Replayed, string? RetryAfter)
    {
        public string? ErrorCode => Root.GetProperty("error_code").GetString();

        public string Message => Root.GetProperty("error_message").GetString() ?? "";

        public JsonElement Data => Root.GetProperty("data");
    }
}
