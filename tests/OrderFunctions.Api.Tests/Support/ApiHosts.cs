using OrderFunctions.Testing;
using OrderFunctions.Testing.FunctionsHost;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>The two hosts of the API contract: LocalHost on a test server, or the real Functions worker under the test host.</summary>
public enum ApiHost
{
    Local,
    Functions,
}

/// <summary>
/// Which host this test run uses: <c>ORDERS_TEST_HOST=local</c> (the default) or <c>functions</c>. scripts/test.sh runs
/// this project once per host, so every <c>IClassFixture&lt;ApiFixture&gt;</c> class runs on both.
/// </summary>
public static class ApiHosts
{
    public const string Variable = "ORDERS_TEST_HOST";

    public static ApiHost Current { get; } = Parse(Environment.GetEnvironmentVariable(Variable));

    /// <summary>The host's own request body limit, the value local.settings.sample.json documents (and Bicep sets).</summary>
    public static string RequestBodySizeLimit => RepositorySettings.Sample(FunctionsWorkerHost.BodySizeLimitSetting);

    private static ApiHost Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "local" => ApiHost.Local,
        "functions" => ApiHost.Functions,
        _ => throw new InvalidOperationException($"{Variable}={value}: use 'local' (LocalHost) or 'functions' (the Functions worker)"),
    };
}

/// <summary>A fact that applies to one host only; on the other it is reported as skipped, with the reason.</summary>
public sealed class HostFactAttribute : FactAttribute
{
    public HostFactAttribute(ApiHost only, string reason)
    {
        if (ApiHosts.Current != only)
        {
            Skip = $"{only} host only: {reason}";
        }
    }
}

/// <summary>A theory that applies to one host only; on the other it is reported as skipped, with the reason.</summary>
public sealed class HostTheoryAttribute : TheoryAttribute
{
    public HostTheoryAttribute(ApiHost only, string reason)
    {
        if (ApiHosts.Current != only)
        {
            Skip = $"{only} host only: {reason}";
        }
    }
}
