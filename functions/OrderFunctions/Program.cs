using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OrderFunctions;
using OrderFunctions.Core;
using OrderFunctions.Core.Telemetry;

// The Azure Functions isolated worker: Core's handlers and jobs behind thin triggers. Settings are the app
// settings (local.settings.json "Values" under `func start`), which reach the worker as environment variables.
var builder = FunctionsApplication.CreateBuilder(args);
builder.Services.AddOrderFunctions(builder.Configuration);
builder.Services.AddSingleton<HttpTriggerAdapter>();

// OpenTelemetry: the worker's invocation span ("function <Name>", a child of the host's request span), Npgsql's
// spans beneath it, exported to Application Insights (APPLICATIONINSIGHTS_CONNECTION_STRING) or any OTLP endpoint.
// UseFunctionsWorkerDefaults tells the host the worker sends its own telemetry, so nothing is sent twice.
if (OrderTelemetry.IsEnabled(builder.Configuration))
{
    builder.Services.AddOpenTelemetry().UseFunctionsWorkerDefaults().AddOrderFunctionsTracing(builder.Configuration);
}

builder.Build().Run();
