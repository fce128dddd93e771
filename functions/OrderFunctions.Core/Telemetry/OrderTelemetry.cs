using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Npgsql;
using OpenTelemetry;
using Azure.Monitor.OpenTelemetry.Exporter;
using OpenTelemetry.Trace;

namespace OrderFunctions.Core.Telemetry;

/// <summary>
/// Traces both hosts export: the host's own request (or invocation) span, Npgsql's command spans beneath it, and
/// the order and trader as attributes of the request. Attributes never carry a token, a key or a connection string:
/// the caller is named by the token's subject only, and Npgsql reports database, server and statement text.
/// </summary>
public static class OrderTelemetry
{
    /// <summary>The OpenTelemetry attribute naming the authenticated caller (Application Insights: the authenticated user).</summary>
    public const string TraderAttribute = "enduser.id";

    /// <summary>The order a request executed or addressed (Application Insights: a custom dimension).</summary>
    public const string OrderAttribute = "orders.order_id";

    /// <summary>Settings that switch exporters on; none set means no tracer at all (no cost per request).</summary>
    public const string AzureMonitorSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";
    public const string OtlpEndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string TracesExporterSetting = "OTEL_TRACES_EXPORTER";

    /// <summary>Tags the current request span with the caller; no-op when nothing records it.</summary>
    public static void TagTrader(Guid trader) => Activity.Current?.SetTag(TraderAttribute, trader.ToString());

    /// <summary>Tags the current request span with an order id.</summary>
    public static void TagOrder(Guid orderId) => Activity.Current?.SetTag(OrderAttribute, orderId.ToString());

    /// <summary>Tags the current request span with the order a stored function's envelope names (data.order_id).</summary>
    public static void TagOrder(JsonObject envelope)
    {
        if (Activity.Current is { } activity && envelope["data"]?["order_id"] is JsonValue id && id.TryGetValue(out string? text)
            && Guid.TryParse(text, out var orderId))
        {
            activity.SetTag(OrderAttribute, orderId.ToString());
        }
    }

    /// <summary>Whether any exporter is configured: hosts add tracing only then.</summary>
    public static bool IsEnabled(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration[AzureMonitorSetting])
        || !string.IsNullOrWhiteSpace(configuration[OtlpEndpointSetting])
        || WantsConsole(configuration);

    /// <summary>
    /// Npgsql's spans and the exporters the settings name: Azure Monitor (Application Insights: traces, requests,
    /// dependencies and logs) when its connection string is set; OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the
    /// standard OTEL_EXPORTER_OTLP_* settings apply, e.g. OTEL_EXPORTER_OTLP_PROTOCOL); the console when
    /// OTEL_TRACES_EXPORTER lists "console". The host adds its own request instrumentation.
    /// </summary>
    public static IOpenTelemetryBuilder AddOrderFunctionsTracing(this IOpenTelemetryBuilder builder, IConfiguration configuration)
    {
        builder.WithTracing(tracing =>
        {
            // Npgsql records the database, server, port and statement text; parameter values are never attributes.
            tracing.AddNpgsql();
            if (!string.IsNullOrWhiteSpace(configuration[OtlpEndpointSetting]))
            {
                tracing.AddOtlpExporter();
            }

            if (WantsConsole(configuration))
            {
                tracing.AddConsoleExporter();
            }
        });

        if (!string.IsNullOrWhiteSpace(configuration[AzureMonitorSetting]))
        {
            builder.UseAzureMonitorExporter(options => options.ConnectionString = configuration[AzureMonitorSetting]);
        }

        return builder;
    }

    private static bool WantsConsole(IConfiguration configuration) =>
        (configuration[TracesExporterSetting] ?? "").Split(',', StringSplitOptions.TrimEntries).Contains("console", StringComparer.OrdinalIgnoreCase);
}
