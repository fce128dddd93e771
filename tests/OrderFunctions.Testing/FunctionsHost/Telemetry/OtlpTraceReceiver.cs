using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrderFunctions.Testing.Telemetry.Otlp;

namespace OrderFunctions.Testing.Telemetry;

/// <summary>One exported span, flattened: ids as lowercase hex, attributes as text.</summary>
public sealed record ReceivedSpan(
    string TraceId,
    string SpanId,
    string ParentSpanId,
    string Name,
    string Kind,
    string Scope,
    IReadOnlyDictionary<string, string> Attributes,
    IReadOnlyList<IReadOnlyDictionary<string, string>> Events,
    IReadOnlyDictionary<string, string> Resource)
{
    /// <summary>Every attribute value of the span, its events and its resource: what must never hold a secret.</summary>
    public IEnumerable<string> AllValues => Attributes.Values.Concat(Events.SelectMany(e => e.Values)).Concat(Resource.Values);
}

/// <summary>
/// An OTLP/HTTP trace receiver on a loopback port (POST /v1/traces, protobuf): point a host's
/// OTEL_EXPORTER_OTLP_ENDPOINT at <see cref="Endpoint"/> and read what it exported.
/// </summary>
public sealed class OtlpTraceReceiver : IAsyncDisposable
{
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private readonly SemaphoreSlim _received = new(0);
    private readonly WebApplication _app;

    private OtlpTraceReceiver(WebApplication app) => _app = app;

    public Uri Endpoint { get; private set; } = null!;

    public IReadOnlyList<ReceivedSpan> Spans => [.. _spans];

    /// <summary>
    /// The settings that make a host export its traces here promptly (a 100 ms batch delay) and completely. A host
    /// started in the test process (LocalHost under WebApplicationFactory) listens to Npgsql's activity source
    /// process-wide, so it also records every command the tests and the other fixtures running in parallel send; the
    /// default queue of 2,048 spans could then overflow under load and drop spans at random, among them the ones a
    /// test counts. A queue that large is never full between two 100 ms exports.
    /// </summary>
    public IReadOnlyDictionary<string, string> ExporterSettings => new Dictionary<string, string>
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Endpoint.ToString().TrimEnd('/'),
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        ["OTEL_BSP_MAX_QUEUE_SIZE"] = "262144",
        ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = "8192",
    };

    public static async Task<OtlpTraceReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new OtlpTraceReceiver(app);
        app.MapPost("/v1/traces", receiver.ExportAsync);
        await app.StartAsync();
        receiver.Endpoint = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        return receiver;
    }

    /// <summary>Waits until the spans of one trace satisfy <paramref name="complete"/>, and returns them.</summary>
    public async Task<IReadOnlyList<ReceivedSpan>> WaitForTraceAsync(string traceId, Func<IReadOnlyList<ReceivedSpan>, bool> complete, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            var trace = _spans.Where(s => s.TraceId == traceId).ToList();
            if (complete(trace))
            {
                return trace;
            }

            try
            {
                await _received.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"trace {traceId} incomplete after {timeout.TotalSeconds:0} s; received: "
                    + string.Join("; ", trace.Select(s => $"{s.Scope} {s.Kind} '{s.Name}' {s.SpanId} <- {s.ParentSpanId}")));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task ExportAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        var request = ExportTraceServiceRequest.Parser.ParseFrom(body.ToArray());
        // An export groups its spans by instrumentation scope, not by when they ended, so a request's entry span
        // (Microsoft.AspNetCore's) can come before its Npgsql children in the same export. Every span of the export
        // is stored before any waiter looks: a waiter woken between the two saw the entry without its database
        // commands (TelemetryTests and TradeListingTests each failed once in CI the way this race makes them fail).
        var received = 0;
        foreach (var resourceSpans in request.ResourceSpans)
        {
            var resource = Flatten(resourceSpans.Resource?.Attributes ?? []);
            foreach (var scopeSpans in resourceSpans.ScopeSpans)
            {
                foreach (var span in scopeSpans.Spans)
                {
                    _spans.Enqueue(new ReceivedSpan(Hex(span.TraceId), Hex(span.SpanId), Hex(span.ParentSpanId), span.Name,
                        span.Kind.ToString(), scopeSpans.Scope?.Name ?? "", Flatten(span.Attributes),
                        span.Events.Select(e => Flatten(e.Attributes)).ToList(), resource));
                    received++;
                }
            }
        }

        if (received > 0)
        {
            _received.Release(received);
        }

        context.Response.ContentType = "application/x-protobuf";
        await context.Response.Body.WriteAsync(new ExportTraceServiceResponse().ToByteArray(), context.RequestAborted);
    }

    private static string Hex(ByteString bytes) => Convert.ToHexStringLower(bytes.Span);

    private static Dictionary<string, string> Flatten(IEnumerable<KeyValue> attributes) =>
        attributes.GroupBy(a => a.Key).ToDictionary(g => g.Key, g => Text(g.Last().Value));

    private static string Text(AnyValue? value) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.DoubleValue => value.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.ArrayValue => string.Join(",", value.ArrayValue.Values.Select(Text)),
        AnyValue.ValueOneofCase.KvlistValue => string.Join(",", value.KvlistValue.Values.Select(v => v.Key + "=" + Text(v.Value))),
        AnyValue.ValueOneofCase.BytesValue => Convert.ToBase64String(value.BytesValue.Span),
        _ => "",
    };
}
