using System.Text.Json;
using OrderFunctions.Api.Tests.Support;
using static OrderFunctions.Api.Tests.Support.TestInstruments;

namespace OrderFunctions.Api.Tests;

/// <summary>The admin routes: instruments, deposits, broker position snapshots, maintenance runs.</summary>
public class AdminRoutesTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task Instruments_upsert_is_200_with_inserted_and_updated_counts()
    {
        var first = new Instrument("ADM-ONE", "first", 10m, 0.05m, 0.0001m, 0.1m, 0.1m, 0.005m, 12.345m, true);
        var second = first with { Symbol = "ADM-TWO", Description = "second", LastPrice = null };

        var inserted = await UpsertAsync(first, second);
        var updated = await UpsertAsync(first with { Description = "first, renamed", Tradable = false, LastPrice = null },
            first with { Symbol = "ADM-THREE" });

        var insertedData = inserted.AssertSuccess(200);
        Assert.Equal(2, insertedData.GetProperty("inserted").GetInt32());
        Assert.Equal(0, insertedData.GetProperty("updated").GetInt32());
        var updatedData = updated.AssertSuccess(200);
        Assert.Equal(1, updatedData.GetProperty("inserted").GetInt32());
        Assert.Equal(1, updatedData.GetProperty("updated").GetInt32());
        await using var connection = await api.OpenAdminConnectionAsync();
        await using var command = new Npgsql.NpgsqlCommand(
            "SELECT description, contract_size, margin_rate, commission_rate, min_qty, qty_step, tick_size, last_price, tradable FROM trading.instruments WHERE symbol = 'ADM-ONE'",
            connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("first, renamed", reader.GetString(0));
        Assert.Equal(10m, reader.GetDecimal(1));
        Assert.Equal(0.05m, reader.GetDecimal(2));
        Assert.Equal(0.0001m, reader.GetDecimal(3));
        Assert.Equal(0.1m, reader.GetDecimal(4));
        Assert.Equal(0.1m, reader.GetDecimal(5));
        Assert.Equal(0.005m, reader.GetDecimal(6));
        Assert.Equal(12.345m, reader.GetDecimal(7));
        Assert.False(reader.GetBoolean(8));
    }

    [Fact]
    public async Task Instruments_upsert_takes_the_limits_inclusive_where_they_are_a_margin_rate_of_1_and_a_commission_rate_of_0()
    {
        var full = new Instrument("ADM-FULL", "full margin", 1m, 1m, 0m, 1m, 1m, 0.01m, null, true);

        var result = await UpsertAsync(full);

        Assert.Equal(1, result.AssertSuccess(200).GetProperty("inserted").GetInt32());
    }

    [Fact]
    public async Task Deposit_is_201_and_opens_the_account_then_adds_to_it()
    {
        var trader = Guid.NewGuid();
        var path = $"/api/admin/accounts/{trader}/deposits";

        var opened = await api.SendAsync(HttpMethod.Post, path, api.AdminToken, new { amount = 1_500.12345678m }, NewKey());
        var topped = await api.SendAsync(HttpMethod.Post, path, api.AdminToken, new { amount = "0.00000001", reason = "bonus" }, NewKey());

        var first = opened.AssertSuccess(201);
        Assert.Equal(trader.ToString(), first.GetProperty("user_id").GetString());
        Assert.True(first.GetProperty("created").GetBoolean());
        Assert.Equal(1_500.12345678m, first.GetProperty("balance").GetDecimal());
        Assert.Equal(0m, first.GetProperty("used_margin").GetDecimal());
        Assert.Equal(1, first.GetProperty("version").GetInt64());
        Assert.True(Guid.TryParse(first.GetProperty("transaction_id").GetString(), out _));
        var second = topped.AssertSuccess(201);
        Assert.False(second.GetProperty("created").GetBoolean());
        Assert.Equal(1_500.12345679m, second.GetProperty("balance").GetDecimal());
        Assert.Equal(2, second.GetProperty("version").GetInt64());
        Assert.Equal(1, await api.CountAsync("FROM trading.balance_audit_log WHERE user_id = $1 AND reason = 'bonus'", trader));
        var account = (await api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(trader))).AssertSuccess(200);
        Assert.Equal(1_500.12345679m, account.GetProperty("balance").GetDecimal());
    }

    [Fact]
    public async Task Deposit_with_an_idempotency_key_replays_with_200_and_refuses_another_amount_with_422()
    {
        var trader = Guid.NewGuid();
        var path = $"/api/admin/accounts/{trader}/deposits";
        var key = new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() };

        var first = await api.SendAsync(HttpMethod.Post, path, api.AdminToken, new { amount = 500m, reason = "wire 42" }, key);
        // The same request in another JSON spelling is the same request.
        var replay = await api.SendRawAsync(HttpMethod.Post, path, api.AdminToken, """{"reason": "wire 42", "amount": "500.000"}""",
            "application/json", key);
        var reused = await api.SendAsync(HttpMethod.Post, path, api.AdminToken, new { amount = 5_000m, reason = "wire 42" }, key);

        var data = first.AssertSuccess(201);
        Assert.Null(first.Header("Idempotent-Replayed"));
        Assert.Equal(data.GetRawText(), replay.AssertSuccess(200).GetRawText());
        Assert.Equal("true", replay.Header("Idempotent-Replayed"));
        reused.AssertProblem(422, "IDEMPOTENCY_KEY_REUSED");
        var account = (await api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(trader))).AssertSuccess(200);
        Assert.Equal(500m, account.GetProperty("balance").GetDecimal());
        Assert.Equal(1, await api.CountAsync("FROM trading.balance_audit_log WHERE user_id = $1", trader));
    }

    [Fact]
    public async Task Twenty_concurrent_deposits_with_one_key_credit_once()
    {
        var trader = await api.NewTraderAsync(100m);
        var key = new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() };

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ =>
            api.SendAsync(HttpMethod.Post, $"/api/admin/accounts/{trader}/deposits", api.AdminToken, new { amount = 25m }, key)));

        Assert.Single(results, r => r.Status == 201);
        Assert.Equal(19, results.Count(r => r.Status == 200 && r.Header("Idempotent-Replayed") == "true"));
        Assert.Single(results.Select(r => r.Data.GetRawText()).Distinct());
        var account = (await api.GetAsync("/api/accounts/me", ApiFixture.TokenFor(trader))).AssertSuccess(200);
        Assert.Equal(125m, account.GetProperty("balance").GetDecimal());
    }

    [Fact]
    public async Task Deposit_without_an_idempotency_key_is_400_naming_the_header_and_changes_nothing()
    {
        // A client that repeats a key-less deposit after a lost answer cannot be told apart from a second deposit.
        var trader = await api.NewTraderAsync(100m);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(HttpMethod.Post, $"/api/admin/accounts/{trader}/deposits", api.AdminToken, new { amount = 25m });

        result.AssertProblem(400, "VALIDATION_ERROR");
        Assert.Equal(["Idempotency-Key"], result.ErrorFields);
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Deposit_with_a_malformed_idempotency_key_is_400_naming_the_header_and_changes_nothing()
    {
        var trader = await api.NewTraderAsync(100m);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(HttpMethod.Post, $"/api/admin/accounts/{trader}/deposits", api.AdminToken, new { amount = 25m },
            new Dictionary<string, string> { ["Idempotency-Key"] = new string('k', 256) });

        result.AssertProblem(400, "VALIDATION_ERROR");
        Assert.Equal(["Idempotency-Key"], result.ErrorFields);
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Positions_sync_replaces_open_positions_books_the_pnl_and_recomputes_used_margin_through_the_audit()
    {
        var trader = await api.NewTraderAsync(100_000m);
        var token = ApiFixture.TokenFor(trader);
        await api.ExecutedOrderAsync(token, EurUsd.Symbol, "buy", 0.1m);
        var before = (await api.GetAsync("/api/accounts/me", token)).AssertSuccess(200);

        var result = await api.SendAsync(HttpMethod.Post, "/api/admin/positions/sync", api.AdminToken, new
        {
            user_id = trader,
            positions = new object[]
            {
                new { symbol = Btc.Symbol, side = "long", quantity = 0.5m, avg_entry_price = 60_000m, stop_loss = 55_000m },
                new { symbol = EurUsd.Symbol, side = "short", quantity = 0.2m, avg_entry_price = 1.1m },
            },
            closing_prices = new[] { new { symbol = EurUsd.Symbol, price = 1.085m } },
        });

        var data = result.AssertSuccess(200);
        Assert.Equal(trader.ToString(), data.GetProperty("user_id").GetString());
        Assert.Equal(1, data.GetProperty("closed").GetInt32());
        Assert.Equal(2, data.GetProperty("opened").GetInt32());
        // 0.5 x 1 x 60,000 x 10% + 0.2 x 100,000 x 1.1 x 2%.
        Assert.Equal(3_440m, data.GetProperty("used_margin").GetDecimal());
        // The long closed at 1.085 (its entry: no PnL); the short that replaces it is worth (1.1 - 1.085) x 20,000 = 300
        // at that price, which the books did not earn: booked as -300, so the sync moves no equity at 1.085.
        Assert.Equal(-300m, data.GetProperty("realized_pnl").GetDecimal());
        Assert.Equal(before.GetProperty("balance").GetDecimal() - 300m, data.GetProperty("balance").GetDecimal());
        var open = (await api.GetAsync("/api/positions?status=open", token)).AssertSuccess(200);
        Assert.Equal(["BTC-USD", "EURUSD"], open.GetProperty("items").EnumerateArray().Select(p => p.GetProperty("symbol").GetString()).Order());
        var account = (await api.GetAsync("/api/accounts/me", token)).AssertSuccess(200);
        Assert.Equal(3_440m, account.GetProperty("used_margin").GetDecimal());
        Assert.Equal(1, await api.CountAsync(
            "FROM trading.balance_audit_log WHERE user_id = $1 AND reason = 'position_sync: realized -300 on 1 closed or changed position(s)'", trader));
    }

    [Fact]
    public async Task Positions_sync_that_drops_a_position_without_its_closing_price_is_400_naming_closing_prices_and_changes_nothing()
    {
        var trader = await api.NewTraderAsync(100_000m);
        await api.ExecutedOrderAsync(ApiFixture.TokenFor(trader), EurUsd.Symbol, "buy", 0.1m);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(HttpMethod.Post, "/api/admin/positions/sync", api.AdminToken,
            new { user_id = trader, positions = Array.Empty<object>() });

        result.AssertFieldError(400, "VALIDATION_ERROR", "closing_prices");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Positions_sync_changes_nothing_when_one_position_names_an_unknown_instrument()
    {
        var trader = await api.NewTraderAsync(100_000m);
        await api.ExecutedOrderAsync(ApiFixture.TokenFor(trader), EurUsd.Symbol, "buy", 0.1m);
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(HttpMethod.Post, "/api/admin/positions/sync", api.AdminToken, new
        {
            user_id = trader,
            positions = new object[]
            {
                new { symbol = Btc.Symbol, side = "long", quantity = 0.5m, avg_entry_price = 60_000m },
                new { symbol = "NOSUCH", side = "long", quantity = 1m, avg_entry_price = 1m },
            },
        });

        result.AssertFieldError(400, "VALIDATION_ERROR", "positions[1].symbol");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Positions_sync_names_the_index_of_the_bad_position_as_the_request_ordered_them()
    {
        var trader = await api.NewTraderAsync(100_000m);

        var result = await api.SendAsync(HttpMethod.Post, "/api/admin/positions/sync", api.AdminToken, new
        {
            user_id = trader,
            positions = new object[]
            {
                new { symbol = "ZZ-UNKNOWN", side = "long", quantity = 1m, avg_entry_price = 1m },
                new { symbol = Btc.Symbol, side = "long", quantity = 0.5m, avg_entry_price = 60_000m },
            },
        });

        result.AssertFieldError(400, "VALIDATION_ERROR", "positions[0].symbol");
    }

    [Fact]
    public async Task Positions_sync_is_404_USER_NOT_FOUND_when_the_trader_has_no_account()
    {
        var result = await api.SendAsync(HttpMethod.Post, "/api/admin/positions/sync", api.AdminToken,
            new { user_id = Guid.NewGuid(), positions = Array.Empty<object>() });

        result.AssertProblem(404, "USER_NOT_FOUND");
    }

    [Fact]
    public async Task Maintenance_is_400_naming_job_when_the_job_is_unknown()
    {
        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendAsync(HttpMethod.Post, "/api/admin/maintenance/defragment", api.AdminToken);

        result.AssertFieldError(400, "VALIDATION_ERROR", "job");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Fact]
    public async Task Maintenance_runs_the_orphan_scan_now_and_returns_its_run_record()
    {
        var result = await api.SendAsync(HttpMethod.Post, "/api/admin/maintenance/orphan-scan", api.AdminToken);

        var run = result.AssertSuccess(200);
        Assert.Equal("orphan-scan", run.GetProperty("job").GetString());
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal($"admin:{ApiFixture.AdminId}", run.GetProperty("trigger").GetString());
        Assert.Equal(JsonValueKind.Object, run.GetProperty("findings").ValueKind);
        Assert.Equal(JsonValueKind.Null, run.GetProperty("error").ValueKind);
        Assert.Equal(1, await api.CountAsync("FROM trading.maintenance_runs WHERE id = $1 AND job = 'orphan-scan' AND status = 'succeeded'",
            run.GetProperty("run_id").GetInt64()));
    }

    private Task<ApiResult> UpsertAsync(params Instrument[] instruments) =>
        api.SendAsync(HttpMethod.Put, "/api/admin/instruments", api.AdminToken, new { instruments });

    private static Dictionary<string, string> NewKey() => new() { ["Idempotency-Key"] = Guid.NewGuid().ToString() };
}
