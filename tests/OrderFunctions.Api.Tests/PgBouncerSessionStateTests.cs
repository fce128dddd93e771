using System.Globalization;
using System.Text.Json;
using Npgsql;
using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Testing;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>LocalHost behind a PgBouncer of its own whose pool has ONE server connection: every transaction of every client runs on it.</summary>
public sealed class SingleServerConnectionFixture : ApiFixture
{
    private PgBouncer? _bouncer;

    public PgBouncer Bouncer => _bouncer ?? throw new InvalidOperationException("the fixture is not initialized");

    protected override string HostConnectionString => Bouncer.AppConnectionString(DatabaseName);

    public override async Task InitializeAsync()
    {
        _bouncer = await PgBouncer.StartAsync(poolSize: 1);
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _bouncer?.Stop();
    }
}

/// <summary>
/// Under transaction pooling a server connection passes from one client's transaction to the next client's, with
/// nothing reset in between. The app sets its role and acting trader with set_config(..., true), so they end with
/// the transaction: these tests interleave two traders (and an admin) on a pool of one server connection and look
/// at that connection's session state after every request.
/// </summary>
public sealed class PgBouncerSessionStateTests(SingleServerConnectionFixture api) : IClassFixture<SingleServerConnectionFixture>
{
    // What a transaction could leave behind on its session: role and user, the app's own settings, every server
    // setting, and the session objects DISCARD ALL would drop. application_name is PgBouncer's to set per client.
    private const string ProbeSql = """
        SELECT pg_backend_pid(),
               current_user::text, session_user::text, current_setting('role'),
               concat_ws(',', nullif(current_setting('app.user_id', true), ''), nullif(current_setting('app.audit_reason', true), ''),
                              nullif(current_setting('app.order_id', true), ''), nullif(current_setting('app.transaction_id', true), '')),
               (SELECT coalesce(jsonb_object_agg(name, setting ORDER BY name), '{}')::text FROM pg_settings
                WHERE name <> 'application_name' AND name NOT LIKE '%.%'),
               concat_ws(' ', 'prepared', (SELECT count(*) FROM pg_prepared_statements),
                              'cursors', (SELECT count(*) FROM pg_cursors WHERE name <> ''),
                              'listening', (SELECT count(*) FROM pg_listening_channels()),
                              'temporary', (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
                              'advisory', (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'))
        """;

    [Fact]
    public async Task Role_trader_and_every_setting_are_gone_after_each_transaction_on_the_shared_server_connection()
    {
        // Arrange: two traders; a fresh session of the app's login, straight to PostgreSQL, is the clean state.
        var alice = await api.NewTraderAsync(1_000m);
        var bob = await api.NewTraderAsync(2_000m);
        var clean = await ProbeAsync(api.AppConnectionString);
        var server = (await ProbeAsync(ThroughBouncer())).Pid;
        var steps = new (string What, Guid Trader, Func<Task<ApiResult>> Request)[]
        {
            ("alice reads her account", alice, () => api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(alice))),
            ("bob orders", bob, () => api.PlaceOrderAsync(ApiFixture.TokenFor(bob), new { symbol = EurUsd.Symbol, side = "buy", type = "market", quantity = 0.01m })),
            ("an admin deposits for alice", alice, () => api.SendAsync(HttpMethod.Post, $"/api/admin/accounts/{alice}/deposits", api.AdminToken, new { amount = 5m },
                new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() })),
            ("alice orders", alice, () => api.PlaceOrderAsync(ApiFixture.TokenFor(alice), new { symbol = Btc.Symbol, side = "sell", type = "market", quantity = 0.001m })),
            ("bob reads his account", bob, () => api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(bob))),
            ("alice lists her orders", alice, () => api.GetAsync("/api/orders", ApiFixture.TokenFor(alice))),
            ("bob lists his trades", bob, () => api.GetAsync("/api/trades", ApiFixture.TokenFor(bob))),
            ("alice reads her account again", alice, () => api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(alice))),
        };

        foreach (var (what, trader, request) in steps)
        {
            // Act
            var result = await request();

            // Assert: the answer is the trader's own, and the server connection is left as a fresh session.
            Assert.True(result.Status is 200 or 201, $"{what}: {result.Status} {result.Text}");
            Assert.All(UserIds(result.Data), id => Assert.Equal(trader, id));
            var after = await ProbeAsync(ThroughBouncer());
            Assert.Equal(server, after.Pid);
            Assert.Equal((PostgresServer.AppLogin, PostgresServer.AppLogin, "none"), (after.CurrentUser, after.SessionUser, after.Role));
            Assert.True(after.AppSettings.Length == 0, $"{what} left app settings on the session: {after.AppSettings}");
            Assert.True(after.Settings == clean.Settings, $"{what} left settings that differ from a fresh session: {Differences(clean.Settings, after.Settings)}");
            Assert.True(after.SessionObjects == clean.SessionObjects, $"{what} left session objects: {after.SessionObjects}");
        }
    }

    [Fact]
    public async Task Two_traders_requests_sent_at_once_queue_on_one_server_connection_and_each_sees_only_their_own_account()
    {
        var traders = new[] { await api.NewTraderAsync(1_111m), await api.NewTraderAsync(2_222m) };
        var balances = new Dictionary<Guid, decimal> { [traders[0]] = 1_111m, [traders[1]] = 2_222m };

        var requests = Enumerable.Range(0, 40).Select(async i =>
        {
            var trader = traders[i % 2];
            return (trader, await api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(trader)));
        });
        var answers = await Task.WhenAll(requests);

        foreach (var (trader, result) in answers)
        {
            var account = result.AssertSuccess(200);
            Assert.Equal(trader.ToString(), account.GetProperty("user_id").GetString());
            Assert.Equal(balances[trader], account.GetProperty("balance").GetDecimal());
        }

        var servers = (await api.Bouncer.ShowAsync("SHOW SERVERS")).Where(s => s["database"] == api.DatabaseName).ToList();
        Assert.True(servers.Count <= 1, $"a pool of one had {servers.Count} server connections");
    }

    private string ThroughBouncer() => api.Bouncer.AppConnectionString(api.DatabaseName) + ";Pooling=false";

    private static async Task<Probe> ProbeAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(ProbeSql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return new Probe(reader.GetInt32(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
            reader.GetString(6));
    }

    /// <summary>Every user_id in a response's data, wherever it is.</summary>
    private static IEnumerable<Guid> UserIds(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name == "user_id" && property.Value.ValueKind == JsonValueKind.String)
                    {
                        yield return Guid.Parse(property.Value.GetString()!, CultureInfo.InvariantCulture);
                    }

                    foreach (var id in UserIds(property.Value))
                    {
                        yield return id;
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var id in element.EnumerateArray().SelectMany(UserIds))
                {
                    yield return id;
                }

                break;
        }
    }

    private static string Differences(string clean, string after)
    {
        var before = JsonSerializer.Deserialize<Dictionary<string, string>>(clean)!;
        var now = JsonSerializer.Deserialize<Dictionary<string, string>>(after)!;
        return string.Join(", ", before.Keys.Union(now.Keys).Where(k => before.GetValueOrDefault(k) != now.GetValueOrDefault(k))
            .Select(k => $"{k}: {before.GetValueOrDefault(k)} -> {now.GetValueOrDefault(k)}"));
    }

    private sealed record Probe(int Pid, string CurrentUser, string SessionUser, string Role, string AppSettings, string Settings, string SessionObjects);
}
