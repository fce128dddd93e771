using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrderFunctions;
using OrderFunctions.Core;

// The Azure Functions isolated worker: Core's handlers and jobs behind thin triggers. Settings are the app
// settings (local.settings.json "Values" under `func start`), which reach the worker as environment variables.
// Worker logs flow through the Functions host to Application Insights (APPLICATIONINSIGHTS_CONNECTION_STRING).
var builder = FunctionsApplication.CreateBuilder(args);
builder.Services.AddOrderFunctions(builder.Configuration);
builder.Services.AddSingleton<HttpTriggerAdapter>();
builder.Build().Run();
