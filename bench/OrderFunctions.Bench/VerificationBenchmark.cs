using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Npgsql;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Bench;

/// <summary>
/// What verification costs on a large history (<c>bench/run.sh --verification</c>): the orphan scan over 1,000,000
/// execution-log rows, and GET /api/transactions/{id}/integrity for an account with 100,000 execution-log rows and
/// 100,000 audit rows. The history is the one rejected orders leave (each writes an order and a REJECTED execution
/// log; money does not move), bulk-inserted through the real triggers, so every hash is the database's own. Every
/// number is the median of repeated runs: the machine is shared.
/// </summary>
public static class VerificationBenchmark
{
    private const int BigAccountRows = 100_000;
    private const int RowsPerSmallAccount = 1_000;

    public static async Task<string> RunAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        var database = new BenchDatabase(options with { Traders = 1, Symbols = 1, DatabaseName = options.DatabaseName + "_verify" });
        Console.WriteLine($"creating {options.VerificationRows:N0} execution-log rows ({BigAccountRows:N0} in one account) ...");
        var seedClock = Stopwatch.StartNew();
        await database.CreateAsync(cancellationToken);
        var (bigAccount, transactionId) = await SeedAsync(database.OrdersConnectionString, options.VerificationRows, cancellationToken);
        Console.WriteLine($"seeded in {seedClock.Elapsed.TotalSeconds:F0} s");

        // Long enough for the full-history checks of a scan to finish, so they can be measured at all.
        await using var server = await LocalServer.StartAsync(database.AppConnectionString, RiskSettings.DefaultCloseBatchSize, cancellationToken,
            new Dictionary<string, string?> { ["Database:CommandTimeoutSeconds"] = "600" });
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(30) };
        var admin = DevTokens.Create(LocalServer.Auth, Guid.NewGuid(), admin: true, lifetime: TimeSpan.FromHours(4));
        var trader = LocalServer.Token(bigAccount);
        var integrityPath = $"/api/transactions/{transactionId}/integrity";

        var integrityCold = await TimeAsync(options.VerificationRepeats, () => SendAsync(http, HttpMethod.Get, integrityPath, trader), cancellationToken);
        Report("integrity route, 100k-row account, no checkpoint yet", integrityCold);
        var scans = await TimeAsync(options.VerificationRepeats, () => SendAsync(http, HttpMethod.Post, "/api/admin/maintenance/orphan-scan", admin), cancellationToken);
        Report("orphan scan, repeated (the first run verifies everything)", scans);
        var integrityWarm = await TimeAsync(options.VerificationRepeats, () => SendAsync(http, HttpMethod.Get, integrityPath, trader), cancellationToken);
        Report("integrity route, 100k-row account, after the scans", integrityWarm);

        // Then 10,000 new rows before each scan: the cost of a scan in steady state.
        var withNewRows = new List<double>();
        for (var i = 0; i < options.VerificationRepeats; i++)
        {
            await AppendRowsAsync(database.OrdersConnectionString, 10_000, cancellationToken);
            withNewRows.AddRange(await TimeAsync(1, () => SendAsync(http, HttpMethod.Post, "/api/admin/maintenance/orphan-scan", admin), cancellationToken));
        }

        Report("orphan scan after 10,000 new rows", withNewRows);

        var result = new JsonObject
        {
            ["execution_log_rows"] = options.VerificationRows,
            ["big_account_rows"] = BigAccountRows,
            ["integrity_cold_ms"] = Samples(integrityCold),
            ["orphan_scan_ms"] = Samples(scans),
            ["integrity_after_scans_ms"] = Samples(integrityWarm),
            ["orphan_scan_after_10k_new_rows_ms"] = Samples(withNewRows),
        };
        Directory.CreateDirectory(options.OutputDirectory);
        var path = Path.Combine(options.OutputDirectory, $"verification-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(path, result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        return path;
    }

    private static JsonObject Samples(List<double> samples) => new()
    {
        ["median"] = Math.Round(RatioRound.Median(samples), 1),
        ["runs"] = new JsonArray([.. samples.Select(s => (JsonNode)Math.Round(s, 1))]),
    };

    private static void Report(string what, List<double> samples) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what}: median {RatioRound.Median(samples):F0} ms over {samples.Count} runs ({string.Join(", ", samples.Select(s => s.ToString("F0", CultureInfo.InvariantCulture)))})"));

    private static async Task<List<double>> TimeAsync(int repeats, Func<Task> call, CancellationToken cancellationToken)
    {
        var samples = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var clock = Stopwatch.StartNew();
            await call();
            samples.Add(clock.Elapsed.TotalMilliseconds);
        }

        return samples;
    }

    private static async Task SendAsync(HttpClient http, HttpMethod method, string path, string token)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{method} {path} answered {(int)response.StatusCode}: {body}");
        }
    }

    /// <summary>
    /// Accounts of <see cref="RowsPerSmallAccount"/> rejected orders each, plus one of <see cref="BigAccountRows"/>
    /// rejected orders and as many balance changes (its audit chain). Returns that account and one of its transactions.
    /// </summary>
    private static async Task<(Guid Account, Guid TransactionId)> SeedAsync(string adminConnectionString, int rows, CancellationToken cancellationToken)
    {
        const string seedSql = """
            INSERT INTO trading.accounts (user_id, balance)
            SELECT ('00000000-0000-4000-9000-' || lpad(a::text, 12, '0'))::uuid, 1000000 FROM generate_series(0, @Accounts) a;

            CREATE TEMP TABLE seed_orders ON COMMIT DROP AS
            SELECT ('00000000-0000-4000-9000-' || lpad(CASE WHEN n <= @BigRows THEN 0 ELSE 1 + (n - @BigRows - 1) / @PerAccount END::text, 12, '0'))::uuid AS user_id,
                   gen_random_uuid() AS id, gen_random_uuid() AS transaction_id, n
            FROM generate_series(1, @Rows) n;

            INSERT INTO trading.orders (user_id, id, symbol, side, type, quantity, status, transaction_id, idempotency_key,
                                        request_fingerprint, response, failure_reason, error_code)
            SELECT user_id, id, @Symbol, 'buy', 'market', 1000000, 'rejected', transaction_id, 'seed-' || n, 'seed', '{}'::jsonb,
                   'insufficient margin', 'INSUFFICIENT_MARGIN'
            FROM seed_orders;

            -- Each account's chain, hashed with the schema's own execution_log_hash in order. (Not through the chain trigger:
            -- its plan, made while the table is empty, scans the table for each row, which a million rows make quadratic.)
            SET LOCAL session_replication_role = replica;
            DO $$
            DECLARE
                v_row record;
                v_user uuid;
                v_seq bigint;
                v_prev bytea;
                v_hash bytea;
                v_now timestamptz := now();
            BEGIN
                FOR v_row IN SELECT user_id, id, transaction_id FROM seed_orders ORDER BY user_id, n LOOP
                    IF v_user IS DISTINCT FROM v_row.user_id THEN
                        v_user := v_row.user_id;
                        v_seq := 0;
                        v_prev := trading.execution_log_genesis_hash();
                    END IF;
                    v_seq := v_seq + 1;
                    v_hash := trading.execution_log_hash(v_prev, v_user, v_seq, v_row.id, 'REJECTED', 'insufficient margin', 'INSUFFICIENT_MARGIN',
                                                         v_row.transaction_id, '{}'::jsonb, v_now);
                    INSERT INTO trading.execution_logs (user_id, seq, order_id, event, reason, error_code, transaction_id, details, created_at, prev_hash, row_hash)
                    VALUES (v_user, v_seq, v_row.id, 'REJECTED', 'insufficient margin', 'INSUFFICIENT_MARGIN', v_row.transaction_id, '{}'::jsonb, v_now, v_prev, v_hash);
                    v_prev := v_hash;
                END LOOP;
            END
            $$;
            SET LOCAL session_replication_role = origin;

            -- The big account's audit chain: one balance change per rejected order, as rows that continue each other (updating
            -- one account row that often in one transaction would walk ever longer version chains), and the balance they
            -- end at, set without the trigger that would audit it once more.
            INSERT INTO trading.balance_audit_log (user_id, reason, balance_before, balance_after, margin_before, margin_after, equity_before, equity_after)
            SELECT '00000000-0000-4000-9000-000000000000', 'benchmark adjustment', 1000000 + i - 1, 1000000 + i, 0, 0, 1000000 + i - 1, 1000000 + i
            FROM generate_series(1, @BigRows) i ORDER BY i;
            SET LOCAL session_replication_role = replica;
            UPDATE trading.accounts SET balance = 1000000 + @BigRows, version = version + @BigRows WHERE user_id = '00000000-0000-4000-9000-000000000000';
            SET LOCAL session_replication_role = origin;
            """;
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await connection.ExecuteAsync(new CommandDefinition(seedSql,
                new { Accounts = Math.Max(1, (rows - BigAccountRows) / RowsPerSmallAccount), BigRows = BigAccountRows, PerAccount = RowsPerSmallAccount, Rows = rows,
                      Symbol = BenchDatabase.Symbol(1) },
                transaction, commandTimeout: 3600, cancellationToken: cancellationToken));
            await transaction.CommitAsync(cancellationToken);
        }

        await connection.ExecuteAsync(new CommandDefinition("VACUUM ANALYZE", commandType: System.Data.CommandType.Text, commandTimeout: 3600,
            cancellationToken: cancellationToken));
        var big = Guid.Parse("00000000-0000-4000-9000-000000000000");
        var transactionId = await connection.QuerySingleAsync<Guid>(new CommandDefinition(
            "SELECT transaction_id FROM trading.orders WHERE user_id = @big ORDER BY created_at LIMIT 1", new { big }, cancellationToken: cancellationToken));
        return (big, transactionId);
    }

    /// <summary>More rejected orders, spread over the small accounts, as the API would have written them since the last scan.</summary>
    private static async Task AppendRowsAsync(string adminConnectionString, int rows, CancellationToken cancellationToken)
    {
        const string appendSql = """
            CREATE TEMP TABLE more_orders ON COMMIT DROP AS
            SELECT ('00000000-0000-4000-9000-' || lpad((1 + n % c.k)::text, 12, '0'))::uuid AS user_id, gen_random_uuid() AS id,
                   gen_random_uuid() AS transaction_id, n
            FROM generate_series(1, @Rows) n,
                 (SELECT count(*) AS k FROM trading.accounts WHERE user_id::text LIKE '00000000-0000-4000-9000-%' AND user_id::text <> '00000000-0000-4000-9000-000000000000') c;
            INSERT INTO trading.orders (user_id, id, symbol, side, type, quantity, status, transaction_id, idempotency_key,
                                        request_fingerprint, response, failure_reason, error_code)
            SELECT user_id, id, @Symbol, 'buy', 'market', 1000000, 'rejected', transaction_id, 'more-' || id, 'seed', '{}'::jsonb,
                   'insufficient margin', 'INSUFFICIENT_MARGIN'
            FROM more_orders;
            INSERT INTO trading.execution_logs (user_id, order_id, event, reason, error_code, transaction_id)
            SELECT user_id, id, 'REJECTED', 'insufficient margin', 'INSUFFICIENT_MARGIN', transaction_id FROM more_orders ORDER BY n;
            """;
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(appendSql, new { Rows = rows, Symbol = BenchDatabase.Symbol(1) }, transaction,
            commandTimeout: 3600, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
    }
}
