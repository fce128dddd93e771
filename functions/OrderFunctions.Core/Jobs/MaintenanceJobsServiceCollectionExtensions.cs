using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Core.Jobs;

public static class MaintenanceJobsServiceCollectionExtensions
{
    /// <summary>The timer jobs (as <see cref="IMaintenanceJob"/>, for the schedulers and the admin route) and the archive store.</summary>
    public static IServiceCollection AddMaintenanceJobs(this IServiceCollection services)
    {
        services.TryAddSingleton<IArchiveStore>(sp => new BlobArchiveStore(sp.GetRequiredService<ArchiveStorageSettings>()));
        services.TryAddSingleton<PublishedChainHeads>();
        foreach (var job in MaintenanceJobs.All)
        {
            services.TryAddEnumerable(ServiceDescriptor.Singleton(typeof(IMaintenanceJob), job.JobType));
        }
        return services;
    }
}
