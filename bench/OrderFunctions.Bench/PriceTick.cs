using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Dapper;
using Npgsql;

namespace OrderFunctions.Bench;

/// <summary>
/// The price-tick scenario: N open positions on one symbol, each its own account's long of 1 at 100 with a stop-loss
/// at 95, and one price (90) through all their stops, sent as a price feed sends it (PUT /api/admin/prices). It
/// measures the time from the request until every position is closed, and the system's closes per second while it
/// runs; the risk engine's batches report how long its longest transaction held its locks.
/// </summary>
public sealed class PriceTick(BenchDatabase database, BenchOptions options)
{
    public const string Symbol = "TICK";
    private const int ArrangeBatch = 1_000;

    /// <summary>Trader i (1-based) of the tick: UUIDs apart from the load's traders.</summary>
    public static Guid TraderId(int i) => Guid.Parse("00000000-0000-4000-9000-" + i.ToString("D12", CultureInfo.InvariantCulture));

    /// <summary>The positions, through the same stored functions the API calls (deposits, orders with their stop).</summary>
    public async Task ArrangeAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(database.OrdersConnectionString);
        await connection.OpenAsync(cancellationToken);
        var instrument = new[]
        {
            new
            {
                symbol = Symbol, description = "price-tick benchmark instrument", contract_size = 1m, margin_rate = 0.1m, commission_rate = 0.001m,
                min_qty = 1m, qty_step = 1m, tick_size = 0.01m, last_price = 100m,
            },
        };
        await connection.ExecuteAsync(new CommandDefinition(
            "SELECT trading.upsert_instruments(@Items::jsonb)", new { Items = JsonSerializer.Serialize(instrument) }, cancellationToken: cancellationToken));

        // Each row sets the acting user, then calls the function for them: set_config comes first in the select list.
        const string arrange = """
            SELECT set_config('app.user_id', u::text, true), trading.update_user_balance_and_margin(1000, 0, 'benchmark deposit', true)
            FROM unnest(@Users::uuid[]) u;
            SELECT set_config('app.user_id', u::text, true),
                   trading.execute_order('TICK', 'buy', 'market', 1, NULL, 'tick-' || u, 'bench', NULL, 95, NULL)
            FROM unnest(@Users::uuid[]) u;
            """;
        for (var first = 1; first <= options.TickPositions; first += ArrangeBatch)
        {
            var users = Enumerable.Range(first, Math.Min(ArrangeBatch, options.TickPositions - first + 1)).Select(TraderId).ToArray();
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(arrange, new { Users = users }, transaction, cancellationToken: cancellationToken));
            await transaction.CommitAsync(cancellationToken);
        }

        var open = await OpenAsync(connection, cancellationToken);
        if (open != options.TickPositions)
        {
            throw new InvalidOperationException($"the price tick needs {options.TickPositions} open positions, {open} were opened");
        }

        await connection.ExecuteAsync(new CommandDefinition("ANALYZE", commandType: System.Data.CommandType.Text, cancellationToken: cancellationToken));
    }

    /// <summary>One price through every stop; repeated only while the answer says work is pending (its 20 s budget ran out).</summary>
    public async Task<PriceTickResult> RunAsync(Uri server, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromMinutes(5) };
        var token = LocalServer.AdminToken();
        var body = Encoding.UTF8.GetBytes($$"""{"prices":[{"symbol":"{{Symbol}}","price":90}]}""");
        var started = Stopwatch.GetTimestamp();
        var requests = 0;
        var batches = 0;
        var maxBatchMs = 0.0;
        var closed = 0;
        var errors = new List<string>();
        while (true)
        {
            requests++;
            using var request = new HttpRequestMessage(HttpMethod.Put, "/api/admin/prices")
            {
                Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(request, cancellationToken);
            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            if (!response.IsSuccessStatusCode)
            {
                errors.Add($"{(int)response.StatusCode} {document.RootElement.GetProperty("error_message").GetString()}");
                break;
            }

            var risk = document.RootElement.GetProperty("data").GetProperty("risk");
            batches += risk.GetProperty("batches").GetInt32();
            maxBatchMs = Math.Max(maxBatchMs, risk.GetProperty("max_batch_ms").GetDouble());
            closed += risk.GetProperty("closed").GetProperty("stop_loss").GetInt32() + risk.GetProperty("closed").GetProperty("liquidation").GetInt32();
            if (risk.GetProperty("error").ValueKind == JsonValueKind.String)
            {
                errors.Add(risk.GetProperty("error").GetString()!);
                break;
            }

            if (!risk.GetProperty("pending").GetBoolean() || requests >= 50)
            {
                break;
            }
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await using var connection = new NpgsqlConnection(database.OrdersConnectionString);
        await connection.OpenAsync(cancellationToken);
        var stillOpen = await OpenAsync(connection, cancellationToken);
        var systemOrders = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM trading.orders WHERE symbol = 'TICK' AND source = 'system' AND status = 'executed'", cancellationToken: cancellationToken));
        if (stillOpen > 0)
        {
            errors.Add($"{stillOpen} position(s) still open after the tick");
        }

        return new PriceTickResult(options.TickPositions, options.CloseBatchSize, seconds, closed / seconds, closed, systemOrders, requests, batches, maxBatchMs,
            errors);
    }

    private static Task<long> OpenAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT count(*) FROM trading.positions WHERE symbol = 'TICK' AND status = 'open'", cancellationToken: cancellationToken));
}

/// <summary>
/// The tick's figures: time from the request until all positions were closed, closes per second over that time, how many
/// requests and risk-engine transactions (batches) it took, and the longest batch.
/// </summary>
public sealed record PriceTickResult(int Positions, int BatchSize, double SecondsUntilAllClosed, double ClosesPerSecond, int Closed, long SystemOrders,
    int Requests, int Batches, double MaxBatchMs, IReadOnlyList<string> Errors);
