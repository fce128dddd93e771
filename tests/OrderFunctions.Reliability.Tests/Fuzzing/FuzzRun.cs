using OrderFunctions.Testing;
using OrderFunctions.Testing.FunctionsHost;
using OrderFunctions.Core;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Npgsql;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Reliability.Tests.Support;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace OrderFunctions.Reliability.Tests.Fuzzing;

/// <summary>
/// LocalHost on its own database, the real Functions worker (under the worker test host) on the same database and
/// settings, a second LocalHost on real Kestrel for requests with broken HTTP framing, and the one fuzz run its test
/// class judges (started by the first test to ask).
/// </summary>
public sealed class FuzzRunFixture : LocalHostFixture
{
    private readonly Lazy<Task<FuzzRun>> _run;
    private WebApplicationFactory<Program>? _kestrel;

    public FuzzRunFixture() => _run = new Lazy<Task<FuzzRun>>(() => FuzzRun.ExecuteAsync(this));

    public Task<FuzzRun> Run => _run.Value;

    public FunctionsWorkerHost Worker { get; private set; } = null!;

    /// <summary>The loopback port of the Kestrel instance.</summary>
    public int KestrelPort { get; private set; }

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var schedules = MaintenanceJobs.All.ToDictionary(j => j.ScheduleSetting, j => j.DefaultSchedule);
        Worker = await FunctionsWorkerHost.StartAsync(new FunctionsHostOptions
        {
            Settings = new Dictionary<string, string>(schedules)
            {
                ["Database__ConnectionString"] = AppConnectionString,
                ["Database__MaxRetries"] = "3",
                ["Auth__Issuer"] = Auth.Issuer,
                ["Auth__Audience"] = Auth.Audience,
                ["Auth__SigningKey"] = Auth.SigningKey,
                ["Auth__Authority"] = "",
                ["ArchiveStorage__ConnectionString"] = "",
                [FunctionsWorkerHost.BodySizeLimitSetting] = RepositorySettings.Sample(FunctionsWorkerHost.BodySizeLimitSetting),
                ["Logging__LogLevel__Default"] = "Warning",
            },
            // The worker's warnings stay in its log, replayed by the tests that explain a failure.
            Output = _ => { },
        });
        _kestrel = CreateFactory();
        _kestrel.UseKestrel(0);
        _kestrel.StartServer();
        KestrelPort = new Uri(_kestrel.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
    }

    public override async Task DisposeAsync()
    {
        if (Worker is not null)
        {
            await Worker.DisposeAsync();
        }

        if (_kestrel is not null)
        {
            await _kestrel.DisposeAsync();
        }

        await base.DisposeAsync();
    }
}

/// <summary>The database's shape as one row: counts, sums and digests of every table an API call may write.</summary>
public sealed record DatabaseSnapshot(
    long Accounts, decimal Balances, decimal UsedMargins, long AccountVersions,
    long Positions, decimal PositionQuantities, long PositionVersions,
    long Fills, long AuditRows, long Strategies, string Instruments,
    long Orders, long RejectedOrders, string OrderStates, long ExecutionLogs, long MaintenanceRuns, long WriteOffs, long RiskEvents, string Stops)
{
    public const string Sql = """
        SELECT (SELECT count(*) FROM trading.accounts) AS Accounts,
               (SELECT coalesce(sum(balance), 0) FROM trading.accounts) AS Balances,
               (SELECT coalesce(sum(used_margin), 0) FROM trading.accounts) AS UsedMargins,
               (SELECT coalesce(sum(version), 0)::bigint FROM trading.accounts) AS AccountVersions,
               (SELECT count(*) FROM trading.positions) AS Positions,
               (SELECT coalesce(sum(quantity), 0) FROM trading.positions) AS PositionQuantities,
               (SELECT coalesce(sum(version), 0)::bigint FROM trading.positions) AS PositionVersions,
               (SELECT count(*) FROM trading.fills) AS Fills,
               (SELECT count(*) FROM trading.balance_audit_log) AS AuditRows,
               (SELECT count(*) FROM trading.strategies) AS Strategies,
               (SELECT coalesce(sum(hashtext(i::text)), 0)::text FROM trading.instruments i) AS Instruments,
               (SELECT count(*) FROM trading.orders) AS Orders,
               (SELECT count(*) FROM trading.orders WHERE status = 'rejected') AS RejectedOrders,
               (SELECT coalesce(sum(hashtext(o.id::text || o.status)), 0)::text FROM trading.orders o WHERE o.status <> 'rejected') AS OrderStates,
               (SELECT count(*) FROM trading.execution_logs) AS ExecutionLogs,
               (SELECT count(*) FROM trading.maintenance_runs) AS MaintenanceRuns,
               (SELECT count(*) FROM trading.write_offs) AS WriteOffs,
               (SELECT count(*) FROM trading.risk_events) AS RiskEvents,
               (SELECT coalesce(sum(hashtext(p.id::text || coalesce(p.stop_loss::text, '') || '/' || coalesce(p.take_profit::text, ''))), 0)::text
                FROM trading.positions p) AS Stops
        """;
}

/// <summary>One fuzzed request and what came back.</summary>
public sealed record FuzzResult(int Index, string Host, FuzzRequest Request, int Status, string? MediaType, string Body, bool Replayed, Exception? Exception,
    string? UnexplainedChange)
{
    public const string LocalHost = "LocalHost";
    public const string Functions = "Functions worker";

    /// <summary>
    /// Refused by the Functions host before the app sees it, as in Azure: an empty 400 from its HTTP server for a header
    /// no server accepts, or, for a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, the host's empty 500 (or, when the
    /// server answers before the client has sent it all, the connection closed under the upload).
    /// </summary>
    public bool RefusedByHttpServer => Host == Functions && Body.Length == 0
        && ((Status == 400 && Request.HasHeaderValueKestrelRefuses)
            || (Request.Body?.Length > BodySizeLimit && (Status == 500 || Exception is HttpRequestException)));

    private static readonly long BodySizeLimit = long.Parse(RepositorySettings.Sample(FunctionsWorkerHost.BodySizeLimitSetting), CultureInfo.InvariantCulture);

    public override string ToString() =>
        $"#{Index} [{Host}] {Request}\n  -> {(Exception is not null ? Exception.GetType().Name + ": " + Exception.Message : $"{Status} {MediaType} {(Body.Length > 400 ? Body[..400] + "..." : Body)}")}";
}

/// <summary>
/// Thousands of mutated requests, one at a time, each between two snapshots of the database so any change is
/// attributed to exactly one request: every <see cref="FunctionsShare"/>th goes to the Functions worker, the rest to
/// LocalHost, both on the same database. Reproduce a run with ORDERS_FUZZ_SEED.
/// </summary>
public sealed class FuzzRun
{
    public const int Requests = 3000;

    /// <summary>One request in this many goes to the Functions worker.</summary>
    public const int FunctionsShare = 4;

    public static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("ORDERS_FUZZ_SEED"), out var seed) ? seed : 424_242;

    // Business rejections commit an audit trail (the order, rejected, and its execution log) but never money.
    private static readonly string[] BusinessRejections = ["INSUFFICIENT_BALANCE", "INSUFFICIENT_MARGIN", "PRICE_NOT_MARKETABLE", "INSTRUMENT_NOT_TRADABLE", "ACCOUNT_NOT_ACTIVE",
        "REDUCE_ONLY_REJECTED"];

    private FuzzRun(IReadOnlyList<FuzzResult> results, string signingKey, string connectionString)
    {
        Results = results;
        SigningKey = signingKey;
        ConnectionString = connectionString;
    }

    public IReadOnlyList<FuzzResult> Results { get; }

    /// <summary>Secrets no answer may contain.</summary>
    public string SigningKey { get; }

    public string ConnectionString { get; }

    public static async Task<FuzzRun> ExecuteAsync(FuzzRunFixture host)
    {
        using var client = host.Factory.CreateClient();
        // Header values go out as UTF-8 bytes, so a non-ASCII value reaches the server (which decides) instead of failing in the client.
        using var worker = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8 })
        {
            BaseAddress = host.Worker.BaseAddress,
        };
        var context = await ArrangeAsync(client, host);
        var mutator = new RequestMutator(context, new Random(Seed));
        // The snapshot runs 3001 times: prepared once, it is planned once.
        var snapshots = new NpgsqlConnectionStringBuilder(host.AdminConnectionString) { MaxAutoPrepare = 4, AutoPrepareMinUsages = 2 };
        await using var connection = new NpgsqlConnection(snapshots.ConnectionString);
        await connection.OpenAsync();

        var results = new List<FuzzResult>(Requests);
        var before = await connection.QuerySingleAsync<DatabaseSnapshot>(DatabaseSnapshot.Sql);
        for (var i = 0; i < Requests; i++)
        {
            var request = mutator.Next();
            var toWorker = i % FunctionsShare == FunctionsShare - 1;
            var (status, mediaType, body, replayed, exception) = request.Framing is null
                ? await SendAsync(toWorker ? worker : client, request)
                : await SendRawAsync(toWorker ? host.Worker.BaseAddress.Port : host.KestrelPort, request);
            var after = await connection.QuerySingleAsync<DatabaseSnapshot>(DatabaseSnapshot.Sql);
            results.Add(new FuzzResult(i, toWorker ? FuzzResult.Functions : FuzzResult.LocalHost, request, status, mediaType, body, replayed, exception,
                Judge(status, body, replayed, before, after)));
            before = after;
        }

        return new FuzzRun(results, host.Auth.SigningKey, host.AppConnectionString);
    }

    /// <summary>Null when the change (or its absence) is what the answer allows; otherwise what changed.</summary>
    private static string? Judge(int status, string body, bool replayed, DatabaseSnapshot before, DatabaseSnapshot after)
    {
        if (status is >= 200 and < 300 && !replayed)
        {
            return null;
        }

        var allowed = before;
        if (!replayed && status >= 400 && IsStoredRejection(body))
        {
            allowed = before with { Orders = before.Orders + 1, RejectedOrders = before.RejectedOrders + 1, ExecutionLogs = before.ExecutionLogs + 1 };
        }

        return after == allowed ? null : $"expected {allowed}\n  but found {after}";
    }

    private static bool IsStoredRejection(string body)
    {
        try
        {
            var envelope = Envelope.Parse(body);
            return BusinessRejections.Contains(envelope.ErrorCode) && envelope.String("status") == "rejected";
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            return false;
        }
    }

    private static async Task<(int Status, string? MediaType, string Body, bool Replayed, Exception? Exception)> SendAsync(HttpClient client, FuzzRequest request)
    {
        try
        {
            using var message = new HttpRequestMessage(new HttpMethod(request.Method), new Uri(request.Path, UriKind.Relative));
            foreach (var (name, value) in request.Headers)
            {
                message.Headers.TryAddWithoutValidation(name, value);
            }

            if (request.Body is not null)
            {
                message.Content = new ByteArrayContent(request.Body);
                if (request.ContentType is not null)
                {
                    message.Content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType);
                }
            }

            using var response = await client.SendAsync(message);
            var body = Encoding.UTF8.GetString(await response.Content.ReadAsByteArrayAsync());
            var replayed = response.Headers.TryGetValues("Idempotent-Replayed", out var values) && values.Contains("true");
            return ((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, body, replayed, null);
        }
        catch (Exception e)
        {
            return (0, null, "", false, e);
        }
    }

    /// <summary>The request as raw HTTP/1.1 bytes with its body framed as <see cref="FuzzRequest.Framing"/> says; reads the whole answer.</summary>
    private static async Task<(int Status, string? MediaType, string Body, bool Replayed, Exception? Exception)> SendRawAsync(int port, FuzzRequest request)
    {
        try
        {
            var body = request.Body ?? [];
            var framed = request.Framing switch
            {
                "a chunk size that is not hex" => [.. "zz\r\n"u8, .. body, .. "\r\n0\r\n\r\n"u8],
                "a chunk size beyond any length" => [.. "FFFFFFFFFF\r\n"u8, .. body, .. "\r\n0\r\n\r\n"u8],
                "a chunk longer than its size" => [.. "1\r\n"u8, .. body, .. "\r\n0\r\n\r\n"u8],
                "a chunk without its CRLF" => [.. Encoding.ASCII.GetBytes($"{body.Length:x}\r\n"), .. body, .. "0\r\n\r\n"u8],
                _ => body,
            };
            // Escaped as HttpClient escapes it for the other requests.
            var target = new Uri(new Uri("http://localhost/"), request.Path).PathAndQuery;
            var head = new StringBuilder($"{request.Method} {target} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
            if (request.ContentType is not null)
            {
                head.Append("Content-Type: ").Append(request.ContentType).Append("\r\n");
            }

            foreach (var (name, value) in request.Headers)
            {
                head.Append(name).Append(": ").Append(value).Append("\r\n");
            }

            using var socket = new System.Net.Sockets.TcpClient();
            await socket.ConnectAsync("127.0.0.1", port);
            var stream = socket.GetStream();
            await stream.WriteAsync((byte[])[.. Encoding.UTF8.GetBytes(head.Append("\r\n").ToString()), .. framed]);
            using var answer = new MemoryStream();
            try
            {
                await stream.CopyToAsync(answer);
            }
            catch (IOException)
            {
                // Kestrel may reset the connection once it has answered a request whose body it could not read.
            }

            return RawAnswer.Parse(answer.ToArray());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return (0, null, "", false, e);
        }
    }

    /// <summary>Instruments, a funded trader with one executed order, and tokens of every kind a client could send.</summary>
    private static async Task<FuzzContext> ArrangeAsync(HttpClient client, FuzzRunFixture host)
    {
        var tag = "FZ" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var (symbolA, symbolB) = ($"{tag}-A", $"{tag}-B");
        var trader = Guid.NewGuid();
        var admin = host.Token(Guid.NewGuid(), admin: true);
        var traderToken = host.Token(trader);
        await SendOrThrowAsync(client, HttpMethod.Put, "/api/admin/instruments", admin, null, $$"""
            {"instruments": [
              {"symbol": "{{symbolA}}", "contract_size": 1, "margin_rate": 0.1, "commission_rate": 0.001, "min_qty": 0.01, "qty_step": 0.01, "tick_size": 0.01, "last_price": 100},
              {"symbol": "{{symbolB}}", "contract_size": 10, "margin_rate": 0.05, "commission_rate": 0.0002, "min_qty": 1, "qty_step": 1, "tick_size": 0.5, "last_price": 2500}]}
            """);
        await SendOrThrowAsync(client, HttpMethod.Post, $"/api/admin/accounts/{trader}/deposits", admin, "fuzz-arrange-deposit", """{"amount": 1000000}""");
        var order = Envelope.Parse(await SendOrThrowAsync(client, HttpMethod.Post, "/api/orders", traderToken, "fuzz-arrange",
            $$"""{"symbol": "{{symbolA}}", "side": "buy", "type": "market", "quantity": 1}"""));

        var auth = host.Auth;
        var now = DateTime.UtcNow;
        string[] badTokens =
        [
            DevTokens.Create(auth, trader, lifetime: TimeSpan.FromMinutes(5), now: now.AddHours(-1)),
            DevTokens.Create(auth, trader, now: now.AddHours(1)),
            DevTokens.Create(auth with { SigningKey = "another-signing-key-of-enough-length-0123456789" }, trader, admin: true),
            DevTokens.Create(auth with { Audience = "someone-else" }, trader),
            DevTokens.Create(auth with { Issuer = "someone-else" }, trader, admin: true),
            DevTokens.Create(auth, Guid.NewGuid()),
            Unsigned(trader),
            Signed(auth, new Dictionary<string, object> { ["sub"] = "alice", ["roles"] = TokenValidator.AdminRole }, expires: true),
            Signed(auth, new Dictionary<string, object> { ["sub"] = trader.ToString() }, expires: false),
            Signed(auth, new Dictionary<string, object> { ["sub"] = trader.ToString(), ["roles"] = new[] { 1, 2 } }, expires: true),
        ];

        return new FuzzContext(symbolA, symbolB, trader, Guid.NewGuid(), order.Guid("order_id"), order.Guid("transaction_id"), order.Guid("position.id"),
            traderToken, admin, badTokens);
    }

    private static string Unsigned(Guid trader)
    {
        static string Part(string json) => Base64UrlEncoder.Encode(json);
        return $"{Part("""{"alg":"none","typ":"JWT"}""")}.{Part($$"""{"sub":"{{trader}}","roles":"orders.admin","exp":4102444800}""")}.";
    }

    private static string Signed(AuthSettings auth, Dictionary<string, object> claims, bool expires)
    {
        var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
        return handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = auth.Issuer,
            Audience = auth.Audience,
            Claims = claims,
            Expires = expires ? DateTime.UtcNow.AddHours(1) : null,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(auth.SigningKey)), SecurityAlgorithms.HmacSha256),
        });
    }

    private static async Task<string> SendOrThrowAsync(HttpClient client, HttpMethod method, string path, string token, string? key, string body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (key is not null)
        {
            request.Headers.Add("Idempotency-Key", key);
        }

        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode
            ? text
            : throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"arranging {method} {path} answered {(int)response.StatusCode}: {text}"));
    }
}

/// <summary>An HTTP/1.1 answer read off a socket: status, media type, body (unchunked) and the replay header.</summary>
internal static class RawAnswer
{
    public static (int Status, string? MediaType, string Body, bool Replayed, Exception? Exception) Parse(byte[] bytes)
    {
        var text = Encoding.UTF8.GetString(bytes);
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (headEnd < 0)
        {
            return (0, null, "", false, new InvalidDataException($"no HTTP answer: '{text}'"));
        }

        var head = text[..headEnd].Split("\r\n");
        var status = int.Parse(head[0].Split(' ')[1], CultureInfo.InvariantCulture);
        string? Header(string name) => head.Skip(1).Where(h => h.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            .Select(h => h[(name.Length + 1)..].Trim()).FirstOrDefault();
        var body = text[(headEnd + 4)..];
        if (string.Equals(Header("Transfer-Encoding"), "chunked", StringComparison.OrdinalIgnoreCase))
        {
            var unchunked = new StringBuilder();
            for (var at = 0; ;)
            {
                var lineEnd = body.IndexOf("\r\n", at, StringComparison.Ordinal);
                var size = Convert.ToInt32(body[at..lineEnd], 16);
                if (size == 0)
                {
                    break;
                }

                unchunked.Append(body, lineEnd + 2, size);
                at = lineEnd + 2 + size + 2;
            }

            body = unchunked.ToString();
        }

        return (status, Header("Content-Type")?.Split(';')[0].Trim(), body, Header("Idempotent-Replayed") == "true", null);
    }
}
