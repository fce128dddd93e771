using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Handlers;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Core.Risk;

namespace OrderFunctions.Core;

public static class ServiceCollectionExtensions
{
    /// <summary>Everything both hosts need: settings, the one data source, token validation, handlers, jobs.</summary>
    public static IServiceCollection AddOrderFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        var settings = OrderFunctionsSettings.Load(configuration);
        services.TryAddSingleton(settings);
        services.TryAddSingleton(settings.Database);
        services.TryAddSingleton(settings.Auth);
        services.TryAddSingleton(settings.Maintenance);
        services.TryAddSingleton(settings.ArchiveStorage);
        services.TryAddSingleton(settings.Risk);
        services.TryAddSingleton(sp => OrdersDatabase.CreateDataSource(sp.GetRequiredService<DatabaseSettings>()));
        services.TryAddSingleton(sp => new OrdersDatabase(
            sp.GetRequiredService<Npgsql.NpgsqlDataSource>(),
            sp.GetRequiredService<DatabaseSettings>(),
            sp.GetRequiredService<ILogger<OrdersDatabase>>()));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<PoolMetrics>();
        services.TryAddSingleton(sp => new TokenValidator(sp.GetRequiredService<AuthSettings>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<OrdersHandler>();
        services.TryAddSingleton<AccountHandler>();
        services.TryAddSingleton<ListingHandler>();
        services.TryAddSingleton<AdminHandler>();
        services.TryAddSingleton<HealthHandler>();
        services.TryAddSingleton<PositionsHandler>();
        services.TryAddSingleton<RiskEngine>();
        services.TryAddSingleton<OrderApi>();
        services.AddMaintenanceJobs();
        return services;
    }
}
