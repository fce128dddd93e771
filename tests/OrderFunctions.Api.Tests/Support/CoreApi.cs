using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core;
using OrderFunctions.Core.Api;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>Core's endpoint table, the one both hosts serve, read without starting either.</summary>
public static class CoreApi
{
    private static readonly Lazy<IReadOnlyList<ApiEndpoint>> Table = new(() =>
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:ConnectionString"] = "Host=unused.invalid",
            ["Auth:Issuer"] = LocalHostFactory.Auth.Issuer,
            ["Auth:Audience"] = LocalHostFactory.Auth.Audience,
            ["Auth:SigningKey"] = LocalHostFactory.Auth.SigningKey,
        }).Build();
        var services = new ServiceCollection()
            .AddSingleton(typeof(ILogger<>), typeof(NullLogger<>))
            .AddOrderFunctions(configuration)
            .BuildServiceProvider();
        // Kept for the process: the table is all that is read, and the data source it built is never opened.
        return services.GetRequiredService<OrderApi>().Endpoints;
    });

    public static IReadOnlyList<ApiEndpoint> Endpoints => Table.Value;
}
