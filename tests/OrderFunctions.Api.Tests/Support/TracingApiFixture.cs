using System.Diagnostics;
using OrderFunctions.Testing.FunctionsHost;
using OrderFunctions.Testing.Telemetry;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>
/// An <see cref="ApiFixture"/> whose host exports its traces over OTLP to a receiver of its own, so a test can read
/// the spans one request produced on either host: it sends a W3C traceparent of a fresh trace and waits for the
/// request's entry span (ASP.NET Core's request span on LocalHost; the worker's invocation span under the Functions
/// host), which ends, and is exported, after every span beneath it.
/// </summary>
public class TracingApiFixture : ApiFixture
{
    private OtlpTraceReceiver? _receiver;

    public OtlpTraceReceiver Receiver => _receiver ?? throw new InvalidOperationException("the fixture is not initialized");

    protected override IReadOnlyDictionary<string, string>? HostSettings => Receiver.ExporterSettings;

    public override async Task InitializeAsync()
    {
        _receiver = await OtlpTraceReceiver.StartAsync();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        try
        {
            await base.DisposeAsync();
        }
        finally
        {
            if (_receiver is not null)
            {
                await _receiver.DisposeAsync();
            }
        }
    }

    /// <summary>Sends a request in a new trace; returns its result and every span of that trace, the entry span included.</summary>
    public async Task<(ApiResult Result, TracedRequest Trace)> TracedAsync(HttpMethod method, string path, string token, object? body = null,
        IReadOnlyDictionary<string, string>? headers = null)
    {
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        var all = new Dictionary<string, string>(headers ?? new Dictionary<string, string>())
        {
            ["traceparent"] = $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01",
        };
        var result = await SendAsync(method, path, token, body, all);
        var spans = await Receiver.WaitForTraceAsync(traceId, trace => trace.Any(IsEntry), TimeSpan.FromSeconds(30));
        return (result, new TracedRequest(traceId, spans, spans.Single(IsEntry)));
    }

    /// <summary>The span the host opens for a request: ASP.NET Core's server span, or the worker's "function &lt;Name&gt;" span.</summary>
    public bool IsEntry(ReceivedSpan span) => Host.Kind == ApiHost.Local
        ? span.Scope == "Microsoft.AspNetCore" && span.Kind == "Server"
        : span.Scope == "Microsoft.Azure.Functions.Worker";

    /// <summary>On the Functions host, the span id the host passed to the worker as the invocation's parent (its request span).</summary>
    public string? HostRequestSpanId(TracedRequest trace) =>
        Host is FunctionsApiHost functions
            ? functions.Worker.Invocations.Select(i => i.TraceParent.Split('-')).Where(p => p.Length == 4 && p[1] == trace.TraceId).Select(p => p[2]).SingleOrDefault()
            : null;
}

/// <summary>The spans of one request's trace, and its entry span among them.</summary>
public sealed record TracedRequest(string TraceId, IReadOnlyList<ReceivedSpan> Spans, ReceivedSpan Entry)
{
    /// <summary>Spans whose parent chain reaches the entry span.</summary>
    public IReadOnlyList<ReceivedSpan> Descendants
    {
        get
        {
            var byId = Spans.GroupBy(s => s.SpanId).ToDictionary(g => g.Key, g => g.First());
            return Spans.Where(span =>
            {
                for (var parent = span.ParentSpanId; byId.TryGetValue(parent, out var next); parent = next.ParentSpanId)
                {
                    if (next.SpanId == Entry.SpanId)
                    {
                        return true;
                    }
                }

                return false;
            }).ToList();
        }
    }

    /// <summary>Npgsql's command spans (those that carry SQL) beneath the entry span.</summary>
    public IReadOnlyList<ReceivedSpan> DatabaseCommands =>
        Descendants.Where(s => s.Scope == "Npgsql" && (s.Attributes.ContainsKey("db.query.text") || s.Attributes.ContainsKey("db.statement"))).ToList();
}
