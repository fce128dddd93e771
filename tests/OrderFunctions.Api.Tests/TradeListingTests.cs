using System.Text.Json;
using Npgsql;
using OrderFunctions.Api.Tests.Support;

namespace OrderFunctions.Api.Tests;

/// <summary>A trader with 520 fills, executed through execute_order in batches of 40 per transaction.</summary>
public sealed class TradeHistoryFixture : TracingApiFixture
{
    public const int Batches = 13;
    public const int OrdersPerBatch = 40;
    public const int Fills = Batches * OrdersPerBatch;

    public static readonly Guid Trader = Guid.Parse("7a7a7a7a-0000-4000-8000-000000000001");

    protected override async Task SeedAsync()
    {
        var result = await SendAsync(HttpMethod.Post, $"/api/admin/accounts/{Trader}/deposits", AdminToken, new { amount = 1_000_000m },
            new Dictionary<string, string> { ["Idempotency-Key"] = "trade-listing-seed" });
        result.AssertSuccess(201);

        // Each batch is one transaction, so its fills share one filled_at: pages must break ties by id.
        // Buys and sells alternate, opening and closing a small position.
        const string batch = """
            SELECT count(*) FILTER (WHERE (r ->> 'success')::boolean)
            FROM (SELECT trading.execute_order('BTC-USD', CASE WHEN g % 2 = 0 THEN 'sell' ELSE 'buy' END, 'market', 0.01, NULL,
                                               $1 || '-' || g, 'seed') AS r
                  FROM generate_series(1, $2) AS g
                  ORDER BY g) AS executed
            """;
        await using var connection = await OpenAdminConnectionAsync();
        for (var b = 0; b < Batches; b++)
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var context = new NpgsqlCommand("SELECT set_config('app.user_id', $1, true)", connection, transaction))
            {
                context.Parameters.Add(new NpgsqlParameter { Value = Trader.ToString() });
                await context.ExecuteScalarAsync();
            }

            await using (var command = new NpgsqlCommand(batch, connection, transaction))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = $"seed-{b}" });
                command.Parameters.Add(new NpgsqlParameter { Value = OrdersPerBatch });
                Assert.Equal(OrdersPerBatch, (long)(await command.ExecuteScalarAsync())!);
            }

            await transaction.CommitAsync();
        }
    }
}

/// <summary>GET /api/trades: one SQL command per page whatever its size, and keyset pages that cover every fill once.</summary>
public sealed class TradeListingTests(TradeHistoryFixture api) : IClassFixture<TradeHistoryFixture>
{
    private static readonly string Token = ApiFixture.TokenFor(TradeHistoryFixture.Trader);

    [Theory]
    [InlineData(1)]
    [InlineData(50)]
    [InlineData(500)]
    public async Task Trade_listing_sends_one_sql_command_per_page_whatever_its_size(int limit)
    {
        var firstPage = await CountCommandsAsync($"/api/trades?limit={limit}");
        var cursor = Uri.EscapeDataString(firstPage.Result.Data.GetProperty("next_cursor").GetString()!);
        var nextPage = await CountCommandsAsync($"/api/trades?limit={limit}&cursor={cursor}&symbol=BTC-USD&from=2000-01-01T00:00:00Z");

        Assert.Equal(limit, firstPage.Result.AssertSuccess(200).GetProperty("items").GetArrayLength());
        Assert.Equal(Math.Min(limit, TradeHistoryFixture.Fills - limit), nextPage.Result.AssertSuccess(200).GetProperty("items").GetArrayLength());
        Assert.True(firstPage.Commands == 1, $"page 1 of {limit}: {firstPage.Commands} commands");
        Assert.True(nextPage.Commands == 1, $"page 2 of {limit}: {nextPage.Commands} commands");
    }

    [Theory]
    [InlineData(500)]
    [InlineData(37)]
    public async Task Following_next_cursor_walks_every_fill_exactly_once_newest_first(int limit)
    {
        var expected = await FillIdsNewestFirstAsync();
        var walked = new List<string>();
        string? cursor = null;
        var pages = 0;

        do
        {
            var path = cursor is null ? $"/api/trades?limit={limit}" : $"/api/trades?limit={limit}&cursor={Uri.EscapeDataString(cursor)}";
            var page = (await api.GetAsync(path, Token)).AssertSuccess(200);
            walked.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!));
            cursor = page.GetProperty("next_cursor").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next_cursor").GetString();
            pages++;
        }
        while (cursor is not null && pages <= TradeHistoryFixture.Fills);

        Assert.Equal(TradeHistoryFixture.Fills, expected.Count);
        Assert.Equal(expected, walked);
        Assert.Equal((TradeHistoryFixture.Fills + limit - 1) / limit, pages);
    }

    /// <summary>
    /// Counts the database commands one request sent: Npgsql's command spans (one per command or batch round trip)
    /// beneath the request's entry span, as the host exported them. A physical connection open, should the pool need
    /// one, is traced too but carries no SQL: it is not counted.
    /// </summary>
    private async Task<(ApiResult Result, int Commands)> CountCommandsAsync(string path)
    {
        var (result, trace) = await api.TracedAsync(HttpMethod.Get, path, Token);

        Assert.All(trace.DatabaseCommands, span => Assert.Equal(api.DatabaseName, span.Attributes.GetValueOrDefault("db.namespace")));
        return (result, trace.DatabaseCommands.Count);
    }

    private async Task<List<string>> FillIdsNewestFirstAsync()
    {
        await using var connection = await api.OpenAdminConnectionAsync();
        await using var command = new NpgsqlCommand(
            "SELECT id::text FROM trading.fills WHERE user_id = $1 ORDER BY filled_at DESC, id DESC", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = TradeHistoryFixture.Trader });
        var ids = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }
}
