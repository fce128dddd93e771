using System.Text.Json;
using OrderFunctions.Reliability.Tests.Fuzzing;
using Xunit.Abstractions;

namespace OrderFunctions.Reliability.Tests;

/// <summary>
/// An HTTP fuzzer over LocalHost and the Functions worker (<see cref="FuzzRun"/>: thousands of mutated requests to
/// every route, one at a time between database snapshots, a share of them through the worker; it runs once per
/// class and each test judges one property of it).
/// </summary>
public sealed class HttpFuzzTests(FuzzRunFixture fixture, ITestOutputHelper output) : IClassFixture<FuzzRunFixture>
{
    // Text only a failure inside the server could put in an answer; none of it is ever sent by the fuzzer.
    private static readonly string[] Leaks = ["Npgsql", "Exception", " at OrderFunctions", " at System.", "StackTrace", "set_config(", "INSERT INTO", "Password=", "Host="];

    [Fact]
    public async Task No_mutated_request_is_answered_with_a_5xx_or_breaks_the_host()
    {
        var run = await RunAsync();

        // What the host logged for them: the exception behind each kind of 500.
        var causes = fixture.Logs.Entries
            .Where(e => e.StartsWith("Error", StringComparison.Ordinal))
            .Select(e => e.Split('\n').Skip(1).FirstOrDefault() ?? e)
            .GroupBy(line => line)
            .Select(g => $"\n  logged {g.Count()} x {g.Key}");
        // The one 5xx allowed is the Functions host's own refusal of a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT.
        AssertNone(run, r => !r.RefusedByHttpServer && (r.Exception is not null || r.Status >= 500), "were answered 5xx or threw", _ => "",
            string.Concat(causes) + "\nthe worker's log:\n" + fixture.Worker.Log.Tail(30));
        fixture.Worker.EnsureHealthy();
    }

    [Fact]
    public async Task Every_error_answer_is_a_problem_document_with_an_error_code()
    {
        var run = await RunAsync();

        AssertNone(run, r => r.Exception is null && r.Status >= 400 && !IsProblemDocument(r) && !r.RefusedByHttpServer,
            "are errors without a problem document and error_code");
    }

    [Fact]
    public async Task Every_success_answer_is_a_json_envelope()
    {
        var run = await RunAsync();

        AssertNone(run, r => r.Exception is null && r.Status < 400 && !IsSuccessEnvelope(r), "are successes without a success envelope");
    }

    [Fact]
    public async Task A_rejected_or_replayed_request_never_changes_the_database()
    {
        var run = await RunAsync();

        AssertNone(run, r => r.UnexplainedChange is not null, "changed the database although rejected or replayed", r => $"\n  {r.UnexplainedChange}");
    }

    [Fact]
    public async Task Every_request_made_invalid_on_purpose_is_refused_with_a_4xx_whatever_else_was_mutated()
    {
        var run = await RunAsync();

        // Over-precise decimals and numbers with extra characters once executed rounded; the rest were 500s.
        var classes = run.Results.Where(r => r.Request.MustBeRefused is not null)
            .GroupBy(r => r.Request.MustBeRefused switch
            {
                { } why when why.StartsWith("chunked", StringComparison.Ordinal) => "broken chunked framing",
                { } why when why.StartsWith("control", StringComparison.Ordinal) => "control character in a query value",
                { } why when why.StartsWith("two", StringComparison.Ordinal) => "two Idempotency-Keys",
                _ => "over-precise or not-quite-numeric decimal",
            })
            .ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine("made invalid on purpose: " + string.Join(", ", classes.Select(c => $"{c.Key} x{c.Value}")));

        // (Bodies over the Functions host's own limit never reach the app: RefusedByHttpServer, judged elsewhere.)
        AssertNone(run, r => r.Request.MustBeRefused is not null && !r.RefusedByHttpServer && (r.Exception is not null || r.Status is < 400 or >= 500),
            "were made invalid on purpose but not refused with a 4xx", r => $"\n  because of: {r.Request.MustBeRefused}");
        Assert.Equal(4, classes.Count);
        Assert.All(classes, c => Assert.True(c.Value >= 10, $"only {c.Value} requests with {c.Key}"));
    }

    [Fact]
    public async Task No_answer_leaks_a_stack_trace_sql_or_a_secret()
    {
        var run = await RunAsync();

        AssertNone(run, r => Leaks.Any(l => r.Body.Contains(l, StringComparison.Ordinal))
                             || r.Body.Contains(run.SigningKey, StringComparison.Ordinal)
                             || r.Body.Contains(run.ConnectionString, StringComparison.Ordinal), "leak internals");
    }

    [Fact]
    public async Task The_fuzzer_reaches_every_route_with_successes_and_each_kind_of_rejection()
    {
        var run = await RunAsync();

        var statuses = run.Results.GroupBy(r => r.Status).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine("statuses: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key} x{s.Value}")));
        output.WriteLine("successes by template: " + string.Join(", ", run.Results.Where(r => r.Status is >= 200 and < 300)
            .GroupBy(r => r.Request.Template).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} x{g.Count()}")));
        Assert.Equal(FuzzRun.Requests, run.Results.Count);
        foreach (var status in new[] { 200, 201, 400, 401, 403, 404, 405, 413, 415, 422 })
        {
            Assert.True(statuses.ContainsKey(status), $"no request was answered {status}: the mutations lost coverage");
        }

        Assert.True(run.Results.Select(r => r.Request.Template).Distinct().Count() == RequestMutator.Templates, "some route was never fuzzed");
    }

    [Fact]
    public async Task A_share_of_the_requests_reaches_every_route_through_the_Functions_worker()
    {
        var run = await RunAsync();

        var throughWorker = run.Results.Where(r => r.Host == FuzzResult.Functions).ToList();
        var statuses = throughWorker.GroupBy(r => r.Status).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine("through the worker: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key} x{s.Value}")));
        Assert.Equal(FuzzRun.Requests / FuzzRun.FunctionsShare, throughWorker.Count);
        Assert.Equal(throughWorker.Count(r => !r.RefusedByHttpServer), fixture.Worker.Invocations.Count);
        Assert.True(throughWorker.Select(r => r.Request.Template).Distinct().Count() == RequestMutator.Templates, "some route was never fuzzed through the worker");
        foreach (var status in new[] { 200, 201, 400, 401, 404, 405 })
        {
            Assert.True(statuses.ContainsKey(status), $"no request through the worker was answered {status}");
        }
    }

    private async Task<FuzzRun> RunAsync()
    {
        var run = await fixture.Run;
        output.WriteLine($"{run.Results.Count} requests, seed {FuzzRun.Seed} (ORDERS_FUZZ_SEED reproduces it)");
        return run;
    }

    private static void AssertNone(FuzzRun run, Func<FuzzResult, bool> bad, string what, Func<FuzzResult, string>? detail = null, string causes = "")
    {
        var failures = run.Results.Where(bad).ToList();
        var kinds = failures
            .GroupBy(f => $"[{f.Host}] {f.Request.Template} -> {(f.Exception is { } e ? e.GetType().Name : $"{f.Status} {ErrorCode(f)}")}")
            .OrderByDescending(g => g.Count())
            .Select(g => $"  {g.Count()} x {g.Key}");
        Assert.True(failures.Count == 0,
            $"{failures.Count} of {run.Results.Count} requests {what} (seed {FuzzRun.Seed}):\n{string.Join("\n", kinds)}{causes}\ne.g.:\n"
            + string.Join("\n", failures.Take(5).Select(f => f + (detail?.Invoke(f) ?? ""))));
    }

    private static string ErrorCode(FuzzResult result)
    {
        try
        {
            using var document = JsonDocument.Parse(result.Body);
            return document.RootElement.TryGetProperty("error_code", out var code) ? code.ToString() : "";
        }
        catch (JsonException)
        {
            return "(no JSON)";
        }
    }

    private static bool IsProblemDocument(FuzzResult result)
    {
        if (result.MediaType != "application/problem+json")
        {
            return false;
        }

        if (result.Request.Method == "HEAD")
        {
            // No body travels with a HEAD answer; its headers are all there is to judge.
            return true;
        }

        try
        {
            using var document = JsonDocument.Parse(result.Body);
            var root = document.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("success", out var success) && success.ValueKind == JsonValueKind.False
                && root.TryGetProperty("error_code", out var code) && code.ValueKind == JsonValueKind.String && code.GetString()!.Length > 0
                && root.TryGetProperty("status", out var status) && status.ValueKind == JsonValueKind.Number && status.GetInt32() == result.Status
                && new[] { "type", "title", "detail" }.All(m => root.TryGetProperty(m, out var v) && v.ValueKind == JsonValueKind.String);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool IsSuccessEnvelope(FuzzResult result)
    {
        if (result.MediaType != "application/json")
        {
            return false;
        }

        if (result.Request.Method == "HEAD")
        {
            return true;
        }

        try
        {
            using var document = JsonDocument.Parse(result.Body);
            var root = document.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("success", out var success) && success.ValueKind == JsonValueKind.True
                && root.TryGetProperty("data", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
