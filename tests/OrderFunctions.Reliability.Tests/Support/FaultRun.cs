using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Npgsql;
using OrderFunctions.Testing;

namespace OrderFunctions.Reliability.Tests.Support;

/// <summary>LocalHost on its own database, and the one fault run its test class judges (started by the first test to ask).</summary>
public class FaultRunFixture : LocalHostFixture
{
    private readonly Lazy<Task<FaultRun>> _run;

    public FaultRunFixture() => _run = new Lazy<Task<FaultRun>>(() => FaultRun.ExecuteAsync(this));

    public Task<FaultRun> Run => _run.Value;
}

/// <summary>
/// <see cref="FaultRunFixture"/> with LocalHost reaching PostgreSQL through PgBouncer in transaction pooling mode, as
/// in Azure: the saboteur then terminates PgBouncer's server connections in the middle of clients' transactions.
/// </summary>
public sealed class PgBouncerFaultRunFixture : FaultRunFixture
{
    private PgBouncer? _bouncer;

    protected override string HostConnectionString => (_bouncer ?? throw new InvalidOperationException("the fixture is not initialized")).AppConnectionString(DatabaseName);

    public override async Task InitializeAsync()
    {
        _bouncer = await PgBouncer.GetAsync();
        await base.InitializeAsync();
    }
}

/// <summary>
/// Eight clients on four traders send orders with Idempotency-Keys through HTTP; an admin client moves prices; a
/// saboteur terminates the app's busy backends on this database; a quarter of the orders are first sent by an
/// impatient client that cancels after 1–30 ms. Every client retries a key until it has a definitive answer (a
/// success or a business rejection), and some ask again afterwards. Meanwhile an admin makes deposits with
/// Idempotency-Keys into the same accounts, retried the same way. When the faults stop, every key still
/// undecided is sent once more. Sizes are counts, not durations, so a busy machine does the same work slower.
/// </summary>
public sealed class FaultRun
{
    private const int Clients = 8;
    private const int Traders = 4;
    private const int OrdersPerClient = 12;
    private const int KeyedDeposits = 16;

    // Attempts per key while the faults last; whatever is still undecided is resent after they stop.
    private const int AttemptsUnderFaults = 10;

    // Bounds the saboteur and the price mover even if a client hangs.
    private const int MaxSabotageRounds = 5_000;
    private const int MaxPriceMoves = 1_000;

    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("ORDERS_FAULTS_SEED"), out var seed) ? seed : 20_261_124;

    private FaultRun(IReadOnlyList<LoggedOrder> orders, IReadOnlyList<LoggedOrder> keyedDeposits, IReadOnlyList<Attempt> priceMoves, long kills,
        IReadOnlyDictionary<Guid, decimal> deposits, IReadOnlyList<StoredOrder> stored, TimeSpan faultsLasted)
    {
        Orders = orders;
        KeyedDepositRequests = keyedDeposits;
        PriceMoves = priceMoves;
        Kills = kills;
        Deposits = deposits;
        Stored = stored;
        Attempts = orders.SelectMany(o => o.Attempts).ToList();
        Summary = FormattableString.Invariant(
            $"seed {Seed}: {orders.Count} orders and {keyedDeposits.Count} keyed deposits ({keyedDeposits.Sum(d => d.Attempts.Count)} attempts), {Attempts.Count} order attempts ({Attempts.Count(a => a.Cancelled)} cancelled, {Attempts.Count(a => a.Status >= 500)} answered 5xx, {Attempts.Count(a => a.Replayed)} replayed), {priceMoves.Count} price moves, {kills} backends terminated in {faultsLasted.TotalSeconds:0.0} s; final answers: ")
            + string.Join(", ", orders.GroupBy(o => o.Final?.Outcome ?? "none").OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"));
    }

    public IReadOnlyList<LoggedOrder> Orders { get; }

    /// <summary>The admin's deposits with Idempotency-Keys, made while the faults lasted.</summary>
    public IReadOnlyList<LoggedOrder> KeyedDepositRequests { get; }

    public IReadOnlyList<Attempt> Attempts { get; }

    public IReadOnlyList<Attempt> PriceMoves { get; }

    public long Kills { get; }

    /// <summary>Per trader, the money deposited: the arranged deposit and every keyed deposit that was answered as done.</summary>
    public IReadOnlyDictionary<Guid, decimal> Deposits { get; }

    /// <summary>The traders' orders as the database holds them after the run.</summary>
    public IReadOnlyList<StoredOrder> Stored { get; }

    public string Summary { get; }

    public static async Task<FaultRun> ExecuteAsync(LocalHostFixture host)
    {
        // Arrange: two instruments and four funded traders, before any fault.
        using var client = host.Factory.CreateClient();
        var tag = "FT" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var markets = new[]
        {
            new Market($"{tag}-A", ContractSize: 1m, MarginRate: 0.1m, CommissionRate: 0.001m, QtyStep: 0.01m, MaxUnits: 500, Tick: 0.01m, InitialPrice: 100m),
            new Market($"{tag}-B", ContractSize: 10m, MarginRate: 0.05m, CommissionRate: 0.0002m, QtyStep: 1m, MaxUnits: 3, Tick: 0.5m, InitialPrice: 2500m),
        };
        var admin = host.Token(Guid.NewGuid(), admin: true);
        await ArrangeAsync(client, HttpMethod.Put, "/api/admin/instruments", admin, InstrumentsBody(markets, markets.Select(m => m.InitialPrice).ToArray()));
        var deposits = new Dictionary<Guid, decimal>();
        foreach (var amount in new[] { 5_000m, 20_000m, 1_500m, 100_000m }.Take(Traders))
        {
            var trader = Guid.NewGuid();
            await ArrangeAsync(client, HttpMethod.Post, $"/api/admin/accounts/{trader}/deposits", admin, new JsonObject { ["amount"] = amount }.ToJsonString());
            deposits[trader] = amount;
        }

        // Act: clients, the price mover and the saboteur at once.
        var traders = deposits.Keys.ToArray();
        var orders = new ConcurrentBag<LoggedOrder>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var saboteur = SabotageAsync(host, stop.Token);
        var mover = MovePricesAsync(client, admin, markets, stop.Token);
        var depositor = Task.Run(() => DepositAsync(client, admin, traders));
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(i => Task.Run(() =>
            RunClientAsync(client, i, traders[i % Traders], host.Token(traders[i % Traders]), markets, orders))));
        var keyedDeposits = await depositor;
        await stop.CancelAsync();
        var kills = await saboteur;
        var moves = await mover;
        var faultsLasted = clock.Elapsed;

        // Then every undecided key once more, without faults.
        foreach (var request in orders.Concat(keyedDeposits).Where(o => o.Final is null))
        {
            await SendAsync(client, request, timeout: null);
        }

        foreach (var deposit in keyedDeposits.Where(d => d.Final?.Status is 200 or 201))
        {
            deposits[deposit.Trader] += (decimal)JsonNode.Parse(deposit.Body)!["amount"]!;
        }

        await using var connection = new NpgsqlConnection(host.AdminConnectionString);
        var stored = (await connection.QueryAsync<StoredOrder>(
            "SELECT user_id AS UserId, id, idempotency_key AS IdempotencyKey, status, transaction_id AS TransactionId FROM trading.orders WHERE user_id = ANY(@traders)", new { traders })).ToList();
        return new FaultRun(orders.ToList(), keyedDeposits, moves, kills, deposits, stored, faultsLasted);
    }

    private static async Task RunClientAsync(HttpClient client, int index, Guid trader, string token, Market[] markets, ConcurrentBag<LoggedOrder> orders)
    {
        var random = new Random(Seed + index);
        for (var n = 0; n < OrdersPerClient; n++)
        {
            var market = markets[random.Next(markets.Length)];
            var body = new JsonObject
            {
                ["symbol"] = market.Symbol,
                ["side"] = random.Next(2) == 0 ? "buy" : "sell",
                ["type"] = "market",
                ["quantity"] = random.Next(1, market.MaxUnits + 1) * market.QtyStep,
            };
            if (random.Next(7) == 0)
            {
                body["type"] = "limit";
                body["limit_price"] = market.InitialPrice + random.Next(-200, 201) * market.Tick;
            }

            var order = new LoggedOrder(trader, token, $"c{index}-{n}-{Guid.NewGuid():N}", body.ToJsonString());
            orders.Add(order);
            var impatient = random.Next(4) == 0;
            for (var attempt = 0; attempt < AttemptsUnderFaults && order.Final is null; attempt++)
            {
                // An impatient client gives up after a few milliseconds, then retries with the same key.
                await SendAsync(client, order, impatient && attempt == 0 ? TimeSpan.FromMilliseconds(random.Next(1, 30)) : null);
            }

            if (order.Final is not null && random.Next(6) == 0)
            {
                await SendAsync(client, order, timeout: null);
            }
        }
    }

    /// <summary>Deposits with Idempotency-Keys into random traders' accounts, retried (and sometimes repeated) like the orders.</summary>
    private static async Task<List<LoggedOrder>> DepositAsync(HttpClient client, string admin, Guid[] traders)
    {
        var random = new Random(Seed - 2);
        var deposits = new List<LoggedOrder>();
        for (var n = 0; n < KeyedDeposits; n++)
        {
            var trader = traders[random.Next(traders.Length)];
            var body = new JsonObject { ["amount"] = random.Next(1, 100_000) / 100m, ["reason"] = $"fault-run deposit {n}" }.ToJsonString();
            var deposit = new LoggedOrder(trader, admin, $"d{n}-{Guid.NewGuid():N}", body, $"/api/admin/accounts/{trader}/deposits");
            deposits.Add(deposit);
            var impatient = random.Next(4) == 0;
            for (var attempt = 0; attempt < AttemptsUnderFaults && deposit.Final is null; attempt++)
            {
                await SendAsync(client, deposit, impatient && attempt == 0 ? TimeSpan.FromMilliseconds(random.Next(1, 30)) : null);
            }

            if (deposit.Final is not null && random.Next(3) == 0)
            {
                await SendAsync(client, deposit, timeout: null);
            }
        }

        return deposits;
    }

    private static async Task SendAsync(HttpClient client, LoggedOrder order, TimeSpan? timeout)
    {
        using var cancel = timeout is { } t ? new CancellationTokenSource(t) : new CancellationTokenSource();
        using var request = new HttpRequestMessage(HttpMethod.Post, order.Path)
        {
            Content = new StringContent(order.Body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", order.Token);
        request.Headers.Add("Idempotency-Key", order.Key);
        var attempt = await Attempt.SendAsync(client, request, cancel.Token);
        order.Attempts.Add(attempt);
        if (attempt.IsDefinitive && order.Final is null)
        {
            order.Final = attempt;
        }
    }

    /// <summary>Terminates one random busy backend of the app's login on this test's database, again and again.</summary>
    private static async Task<long> SabotageAsync(DatabaseFixture database, CancellationToken stop)
    {
        const string sql = """
            SELECT count(*) FILTER (WHERE pg_terminate_backend(victim.pid))
            FROM (SELECT pid FROM pg_stat_activity
                  WHERE datname = current_database() AND usename = @login AND pid <> pg_backend_pid()
                    AND state IN ('active', 'idle in transaction')
                  ORDER BY random() LIMIT 1) victim
            """;
        var random = new Random(Seed);
        long kills = 0;
        await using var connection = new NpgsqlConnection(database.AdminConnectionString);
        await connection.OpenAsync(CancellationToken.None);
        for (var round = 0; round < MaxSabotageRounds && !stop.IsCancellationRequested; round++)
        {
            kills += await connection.ExecuteScalarAsync<long>(sql, new { login = PostgresServer.AppLogin });
            try
            {
                // Load shaping, not synchronisation: most transactions must get through for the run to end.
                await Task.Delay(random.Next(40, 120), stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return kills;
    }

    /// <summary>Moves both prices by up to ±1% now and then through the admin route, so orders realize profits and losses.</summary>
    private static async Task<List<Attempt>> MovePricesAsync(HttpClient client, string admin, Market[] markets, CancellationToken stop)
    {
        var random = new Random(Seed - 1);
        var prices = markets.Select(m => m.InitialPrice).ToArray();
        var answers = new List<Attempt>();
        while (!stop.IsCancellationRequested && answers.Count < MaxPriceMoves)
        {
            for (var i = 0; i < prices.Length; i++)
            {
                var ticks = Math.Round(prices[i] / markets[i].Tick * (1 + random.Next(-100, 101) / 10_000m));
                prices[i] = Math.Clamp(ticks * markets[i].Tick, markets[i].InitialPrice / 2, markets[i].InitialPrice * 2);
            }

            using var request = new HttpRequestMessage(HttpMethod.Put, "/api/admin/instruments")
            {
                Content = new StringContent(InstrumentsBody(markets, prices), Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            answers.Add(await Attempt.SendAsync(client, request, CancellationToken.None));
            try
            {
                await Task.Delay(random.Next(10, 40), stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return answers;
    }

    private static string InstrumentsBody(Market[] markets, decimal[] prices) => new JsonObject
    {
        ["instruments"] = new JsonArray(markets.Select((m, i) => (JsonNode)new JsonObject
        {
            ["symbol"] = m.Symbol,
            ["contract_size"] = m.ContractSize,
            ["margin_rate"] = m.MarginRate,
            ["commission_rate"] = m.CommissionRate,
            ["min_qty"] = m.QtyStep,
            ["qty_step"] = m.QtyStep,
            ["tick_size"] = m.Tick,
            ["last_price"] = prices[i],
        }).ToArray()),
    }.ToJsonString();

    private static async Task ArrangeAsync(HttpClient client, HttpMethod method, string path, string token, string body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        using var response = await client.SendAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"arranging {method} {path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    private sealed record Market(string Symbol, decimal ContractSize, decimal MarginRate, decimal CommissionRate, decimal QtyStep, int MaxUnits,
        decimal Tick, decimal InitialPrice);
}

/// <summary>One HTTP attempt: its answer, or that the client cancelled it, or what was thrown instead of an answer.</summary>
public sealed record Attempt(int Status, string? ErrorCode, Guid? OrderId, bool Replayed, bool Cancelled, string Body, Exception? Exception)
{
    /// <summary>An answer that settles a key: executed, or a business rejection stored with it.</summary>
    public bool IsDefinitive => !Cancelled && Exception is null && Status is >= 200 and < 500;

    public string Outcome => ErrorCode ?? (Status is 200 or 201 ? "executed" : Status.ToString(CultureInfo.InvariantCulture));

    public static async Task<Attempt> SendAsync(HttpClient client, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await client.SendAsync(request, cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            var envelope = Envelope.Parse(text);
            return new Attempt((int)response.StatusCode, envelope.ErrorCode, envelope.MaybeGuid("order_id"),
                response.Headers.TryGetValues("Idempotent-Replayed", out var replayed) && replayed.Contains("true"), Cancelled: false, text, null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new Attempt(0, null, null, Replayed: false, Cancelled: true, "", null);
        }
        catch (Exception e)
        {
            return new Attempt(0, null, null, Replayed: false, Cancelled: false, "", e);
        }
    }
}

/// <summary>One order (or keyed deposit) a client meant to make once, and every attempt it took.</summary>
public sealed class LoggedOrder(Guid trader, string token, string key, string body, string path = "/api/orders")
{
    public string Path { get; } = path;

    public Guid Trader { get; } = trader;

    public string Token { get; } = token;

    public string Key { get; } = key;

    public string Body { get; } = body;

    public List<Attempt> Attempts { get; } = [];

    public Attempt? Final { get; set; }

    public override string ToString() =>
        $"{Body} attempts: {string.Join("; ", Attempts.Select(a => a.Cancelled ? "cancelled" : $"{a.Status} {a.ErrorCode}{(a.Replayed ? " replayed" : "")}"))}";
}

public sealed record StoredOrder(Guid UserId, Guid Id, string IdempotencyKey, string Status, Guid TransactionId);
