using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Primitives;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Http;
using OrderFunctions.Core.Telemetry;
using OpenTelemetry.Trace;

namespace OrderFunctions.LocalHost;

public static class LocalHostExtensions
{
    /// <summary>Settings (local.settings.json "Values", then environment), Core services, Kestrel limits and schedules.</summary>
    public static WebApplicationBuilder AddOrderFunctionsLocalHost(this WebApplicationBuilder builder)
    {
        // local.settings.json is what `func start` reads; LocalHost reads the same file, below the environment.
        var localSettings = LocalSettings.Find(builder.Environment.ContentRootPath);
        if (localSettings is not null)
        {
            builder.Configuration.Sources.Insert(0, new LocalSettingsSource(localSettings));
        }

        // One line per request from ASP.NET itself is noise next to the API's own logs.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddOrderFunctions(builder.Configuration);
        // The same traces as the Functions app: a request span per call (ASP.NET Core's here, the invocation's there),
        // Npgsql's spans beneath it, exported where the OTLP / Application Insights settings say.
        if (OrderTelemetry.IsEnabled(builder.Configuration))
        {
            builder.Services.AddOpenTelemetry()
                .WithTracing(tracing => tracing.AddAspNetCoreInstrumentation())
                .AddOrderFunctionsTracing(builder.Configuration);
        }

        builder.Services.Configure<KestrelServerOptions>(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = RequestBody.MaxBytes;
            kestrel.AddServerHeader = false;
        });
        // SIGTERM/Ctrl-C: stop accepting, let in-flight requests finish, then dispose the data source.
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.AddHostedService<MaintenanceScheduler>();
        builder.Services.AddCors();
        return builder;
    }

    /// <summary>Maps every route of <see cref="OrderApi"/>, and envelopes for unknown routes and methods.</summary>
    public static WebApplication MapOrderFunctions(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            await next(context);
            if (!context.Response.HasStarted && context.Response.StatusCode is 404 or 405 && context.Response.ContentLength is null
                && context.GetEndpoint() is null or { DisplayName: "405 HTTP Method Not Supported" })
            {
                // Core decides 404 or 405 and words it, as for the Functions app's catch-all function.
                var endpoints = context.RequestServices.GetRequiredService<OrderApi>().Endpoints;
                await WriteAsync(context, UnmatchedRoute.Answer(endpoints, context.Request.Method, context.Request.Path.Value ?? "/"));
            }
        });

        // What `func start` does with Host.CORS and Azure with the Function App's platform CORS: preflights and
        // Access-Control-Allow-Origin for the listed origins only, no credentials (the token is a header). OrderApi
        // itself exposes Idempotent-Replayed, on both hosts.
        var settings = app.Services.GetRequiredService<OrderFunctionsSettings>();
        var api = app.Services.GetRequiredService<OrderApi>();
        if (settings.CorsAllowedOrigins.Count > 0)
        {
            app.UseCors(policy => policy
                .WithOrigins([.. settings.CorsAllowedOrigins])
                .WithMethods([.. api.Endpoints.Select(e => e.Method).Distinct(StringComparer.Ordinal)])
                .WithHeaders([.. Cors.AllowedRequestHeaders])
                .SetPreflightMaxAge(TimeSpan.FromMinutes(10)));
        }

        foreach (var endpoint in api.Endpoints)
        {
            var name = endpoint.Name;
            app.MapMethods("/" + endpoint.Route, [endpoint.Method],
                    async (HttpContext context) => await WriteAsync(context, await api.HandleAsync(name, ToApiRequest(context), context.RequestAborted)))
                .WithName(name);
        }

        return app;
    }

    private static ApiRequest ToApiRequest(HttpContext context) => new()
    {
        Method = context.Request.Method,
        RouteValues = context.Request.RouteValues.ToDictionary(v => v.Key, v => Convert.ToString(v.Value, System.Globalization.CultureInfo.InvariantCulture) ?? ""),
        // Core's one reading of the raw query, the same the Functions app uses.
        Query = QueryParameters.Parse(context.Request.QueryString.Value),
        Headers = context.Request.Headers.ToDictionary(h => h.Key, h => (string?)h.Value ?? "", StringComparer.OrdinalIgnoreCase),
        Body = context.Request.Body,
    };

    private static async Task WriteAsync(HttpContext context, ApiResponse response)
    {
        context.Response.StatusCode = response.Status;
        context.Response.ContentType = response.ContentType;
        context.Response.ContentLength = response.Body.Length;
        foreach (var (name, value) in response.Headers)
        {
            context.Response.Headers[name] = new StringValues(value);
        }

        await context.Response.Body.WriteAsync(response.Body, context.RequestAborted);
    }
}
