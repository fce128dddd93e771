using System.Text.Json.Nodes;

namespace OrderFunctions.Infra.Tests;

/// <summary>
/// local.settings.sample.json lists every setting the app reads. Each one must be set by the
/// template, so a setting added to the code and forgotten in infra fails here, not in production.
/// </summary>
public sealed class AppSettingsTests
{
    /// <summary>Sample keys with no place in Azure, each with the reason and what replaces it.</summary>
    private static readonly Dictionary<string, string> NotInAzure = new(StringComparer.Ordinal)
    {
        ["FUNCTIONS_WORKER_RUNTIME"] = "Flex Consumption takes the worker runtime from functionAppConfig.runtime and rejects this setting",
        ["AzureWebJobsStorage"] = "the host reaches its storage by identity: AzureWebJobsStorage__accountName, __credential and __clientId replace the connection string",
        ["ArchiveStorage__ConnectionString"] = "the archive is reached by identity through ArchiveStorage__serviceUri; the account has no shared key to put in a connection string",
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "a local OpenTelemetry collector; in Azure traces go to Application Insights through APPLICATIONINSIGHTS_CONNECTION_STRING",
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "the protocol of that local collector",
        ["OTEL_TRACES_EXPORTER"] = "console export for a developer's terminal",
    };

    public static TheoryData<string> SampleSettings => [.. SampleKeys().Where(k => !NotInAzure.ContainsKey(k))];

    [Theory]
    [MemberData(nameof(SampleSettings))]
    public async Task Setting_from_the_sample_is_set_by_the_template(string setting)
    {
        var template = await CompiledTemplate.GetAsync();

        Assert.True(template.AppSettings().ContainsKey(setting), $"{setting} is in local.settings.sample.json but infra/main.bicep does not set it on the function app");
    }

    [Fact]
    public void Settings_excluded_from_Azure_are_still_in_the_sample()
    {
        var stale = NotInAzure.Keys.Except(SampleKeys()).ToList();

        Assert.True(stale.Count == 0, $"no longer in local.settings.sample.json, drop them from the exclusions: {string.Join(", ", stale)}");
    }

    [Fact]
    public async Task Settings_excluded_from_Azure_are_not_set_by_the_template()
    {
        var settings = (await CompiledTemplate.GetAsync()).AppSettings();

        var set = NotInAzure.Keys.Where(settings.ContainsKey).ToList();

        Assert.True(set.Count == 0, $"set although they make no sense in Azure: {string.Join("; ", set.Select(k => $"{k} ({NotInAzure[k]})"))}");
    }

    [Fact]
    public async Task Host_storage_is_reached_by_identity_and_no_account_allows_shared_keys()
    {
        var template = await CompiledTemplate.GetAsync();
        var settings = template.AppSettings();

        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]);
        Assert.Contains("AzureWebJobsStorage__accountName", settings.Keys);
        Assert.Contains("AzureWebJobsStorage__clientId", settings.Keys);
        var accounts = template.Resources("Microsoft.Storage/storageAccounts").ToList();
        Assert.NotEmpty(accounts);
        Assert.All(accounts, a => Assert.False(a["properties"]!["allowSharedKeyAccess"]!.GetValue<bool>(), $"{a["name"]} allows shared keys"));
    }

    [Fact]
    public async Task App_signs_in_to_pgbouncer_with_entra_and_no_password()
    {
        var settings = (await CompiledTemplate.GetAsync()).AppSettings();

        Assert.Equal("true", settings["Database__UseEntraAuthentication"]);
        Assert.Contains("Port=6432", settings["Database__ConnectionString"], StringComparison.Ordinal);
        Assert.DoesNotContain("Password", settings["Database__ConnectionString"], StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task No_local_signing_key_is_configured_in_Azure()
    {
        var settings = (await CompiledTemplate.GetAsync()).AppSettings();

        Assert.Equal("", settings["Auth__SigningKey"]);
        Assert.NotEqual("", settings["Auth__Authority"]);
    }

    [Fact]
    public void Every_setting_the_app_reads_is_in_the_sample()
    {
        var missing = OrderFunctions.Core.Configuration.OrderFunctionsSettings.Keys.Except(SampleKeys().Concat(SampleHostKeys())).ToList();

        Assert.True(missing.Count == 0, $"read by the app but missing from local.settings.sample.json: {string.Join(", ", missing)}");
    }

    private static IEnumerable<string> SampleKeys()
    {
        var sample = JsonNode.Parse(File.ReadAllText(Repo.SettingsSample))!;
        return sample["Values"]!.AsObject().Select(p => p.Key);
    }

    // The sample's "Host" section (e.g. Host.CORS) is what `func start` and LocalHost read as Host__<name>.
    private static IEnumerable<string> SampleHostKeys()
    {
        var sample = JsonNode.Parse(File.ReadAllText(Repo.SettingsSample))!;
        return sample["Host"]?.AsObject().Select(p => "Host__" + p.Key) ?? [];
    }
}
