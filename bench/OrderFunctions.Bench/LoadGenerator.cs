using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace OrderFunctions.Bench;

/// <summary>Drives the HTTP API with C concurrent clients for a fixed time and records every request.</summary>
public sealed class LoadGenerator(Uri server, BenchOptions options, RoundTripCounter roundTrips)
{
    private static readonly MediaTypeHeaderValue JsonType = new("application/json");

    public async Task<ScenarioResult> RunAsync(string scenario, TimeSpan warmup, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = options.Clients,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
        };
        using var http = new HttpClient(handler) { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };

        var recorders = Enumerable.Range(0, options.Clients).Select(_ => new Recorder()).ToArray();
        var started = Stopwatch.GetTimestamp();
        var warmupEnds = started + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var ends = warmupEnds + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);

        CpuMeter? cpu = null;
        using var progressStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var progress = ReportProgressAsync(scenario, recorders, warmupEnds, ends, progressStop.Token);

        var clients = Enumerable.Range(0, options.Clients).Select(c => Task.Run(async () =>
        {
            var random = new Random(unchecked(c * 7919 + scenario.GetHashCode(StringComparison.Ordinal)));
            var recorder = recorders[c];
            // Distinct: client c trades traders c+1, c+1+C, ...; hot: everyone trades trader 1.
            var own = Enumerable.Range(1, options.Traders).Where(t => (t - 1) % options.Clients == c).ToArray();
            var tokens = (scenario == Scenario.Hot ? [1] : own).ToDictionary(t => t, t => LocalServer.Token(BenchDatabase.TraderId(t)));
            var traders = tokens.Keys.ToArray();
            var measuring = false;
            while (true)
            {
                var now = Stopwatch.GetTimestamp();
                if (now >= ends || cancellationToken.IsCancellationRequested)
                {
                    break;
                }

                if (!measuring && now >= warmupEnds)
                {
                    recorder.Reset();
                    measuring = true;
                    Interlocked.CompareExchange(ref cpu, CpuMeter.Start(), null);
                }

                var trader = traders[random.Next(traders.Length)];
                var isRead = scenario == Scenario.Mixed && random.Next(2) == 0;
                using var request = isRead ? ReadRequest(random, tokens[trader]) : OrderRequest(random, tokens[trader]);
                var t0 = Stopwatch.GetTimestamp();
                string outcome;
                try
                {
                    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
                    outcome = response.IsSuccessStatusCode
                        ? "ok"
                        : $"{(int)response.StatusCode} {ErrorCode(await response.Content.ReadAsByteArrayAsync(cancellationToken))}";
                }
                catch (HttpRequestException e)
                {
                    outcome = "transport " + e.HttpRequestError;
                }
                catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    outcome = "client timeout";
                }

                recorder.Record(isRead, Stopwatch.GetElapsedTime(t0).TotalMilliseconds, outcome);
            }
        }, cancellationToken)).ToArray();

        await Task.WhenAll(clients);
        var cpuUse = cpu?.Stop(recorders.Sum(r => (long)r.Count));
        var measured = Stopwatch.GetElapsedTime(warmupEnds, Math.Max(Stopwatch.GetTimestamp(), warmupEnds + 1));
        await progressStop.CancelAsync();
        await progress;
        var roundTripsPerRequest = await MeasureRoundTripsAsync(http, scenario, cancellationToken);
        return ScenarioResult.From(scenario, options.Clients, measured, recorders, roundTripsPerRequest, cpuUse);
    }

    /// <summary>
    /// Database round trips per request, counted exactly: the same kind of requests, one at a time on an idle
    /// server, so every Npgsql command seen belongs to them (concurrent load blurs the window's edges).
    /// </summary>
    private async Task<double> MeasureRoundTripsAsync(HttpClient http, string scenario, CancellationToken cancellationToken)
    {
        const int requests = 20;
        var random = new Random(42);
        var token = LocalServer.Token(BenchDatabase.TraderId(1));
        var before = roundTrips.Count;
        for (var i = 0; i < requests; i++)
        {
            var isRead = scenario == Scenario.Mixed && i % 2 == 1;
            using var request = isRead ? ReadRequest(random, token) : OrderRequest(random, token);
            using var response = await http.SendAsync(request, cancellationToken);
            response.EnsureSuccessStatusCode();
        }

        return (roundTrips.Count - before) / (double)requests;
    }

    private static HttpRequestMessage OrderRequest(Random random, string token)
    {
        var symbol = BenchDatabase.Symbol(1 + random.Next(4));
        var side = random.Next(2) == 0 ? "buy" : "sell";
        var body = $$"""{"symbol":"{{symbol}}","side":"{{side}}","type":"market","quantity":"0.01"}""";
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/orders")
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) { Headers = { ContentType = JsonType } },
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        return request;
    }

    private static HttpRequestMessage ReadRequest(Random random, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, random.Next(2) == 0 ? "/api/trades?limit=50" : "/api/accounts/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    private static string ErrorCode(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.TryGetProperty("error_code", out var code) ? code.GetString() ?? "?" : "?";
        }
        catch (JsonException)
        {
            return "non-JSON body";
        }
    }

    private static async Task ReportProgressAsync(string scenario, Recorder[] recorders, long warmupEnds, long ends, CancellationToken cancellationToken)
    {
        var total = (ends - warmupEnds) / (double)Stopwatch.Frequency;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var now = Stopwatch.GetTimestamp();
                var elapsed = (now - warmupEnds) / (double)Stopwatch.Frequency;
                var requests = recorders.Sum(r => r.Count);
                var errors = recorders.Sum(r => r.Errors);
                // Within half a second of the warm-up's end the counts may still be the warm-up's: no rate yet.
                Console.Error.WriteLine(elapsed < 0.5
                    ? $"  {scenario,-8} warming up ({Math.Max(-elapsed, 0):F0} s left), {requests} requests"
                    : $"  {scenario,-8} {Math.Min(elapsed, total),4:F0}/{total:F0} s  {requests,7} requests  {requests / Math.Max(elapsed, 0.001),7:F0}/s  errors {errors}");
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>One client's measurements; read by the progress reporter while written (counts only).</summary>
public sealed class Recorder
{
    private readonly Lock _gate = new();

    public List<double> OrderLatencies { get; private set; } = new(100_000);
    public List<double> ReadLatencies { get; private set; } = new(100_000);
    public Dictionary<string, int> Outcomes { get; private set; } = new(StringComparer.Ordinal);
    public int Count;
    public int Errors;

    public void Reset()
    {
        lock (_gate)
        {
            OrderLatencies = new List<double>(100_000);
            ReadLatencies = new List<double>(100_000);
            Outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
            Count = 0;
            Errors = 0;
        }
    }

    public void Record(bool read, double milliseconds, string outcome)
    {
        lock (_gate)
        {
            (read ? ReadLatencies : OrderLatencies).Add(milliseconds);
            Outcomes[outcome] = Outcomes.GetValueOrDefault(outcome) + 1;
            Count++;
            if (outcome != "ok")
            {
                Errors++;
            }
        }
    }
}
