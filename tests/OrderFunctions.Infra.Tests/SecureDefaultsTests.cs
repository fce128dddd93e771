using System.Text.Json.Nodes;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Infra.Tests;

/// <summary>
/// infra/ is private and locked by default: with the template's defaults and with the production parameter file,
/// the database and the storage accounts have no public endpoint, no firewall rule admits every Azure service, the
/// audit archive's retention policy is locked (unlocked only by the named test deployment), the host buffers only
/// small bodies, CORS admits named origins only, and Entra tokens map to traders by oid with the trade scope.
/// Each assertion reads the compiled ARM JSON, so a change back to a weaker default fails here.
/// </summary>
public sealed class SecureDefaultsTests
{
    [Fact]
    public async Task The_network_is_private_by_default_and_in_production()
    {
        var t = await CompiledTemplate.GetAsync();

        Assert.Equal("private", t.DefaultOf("networkMode")?.ToString());
        Assert.Equal("private", t.Effective(t.Parameters, "networkMode")?.ToString());
        Assert.Equal("private", t.Effective(t.TestParameters, "networkMode")?.ToString());
        Assert.Equal("[equals(parameters('networkMode'), 'private')]", t.Template["variables"]!["isPrivate"]!.ToString());
    }

    [Fact]
    public async Task The_database_has_no_public_endpoint_when_the_network_is_private()
    {
        var t = await CompiledTemplate.GetAsync();

        Assert.Equal("[not(variables('isPrivate'))]", t.Module("postgres")["properties"]!["parameters"]!["publicNetworkAccess"]!["value"]!.ToString());
        var server = Assert.Single(t.Resources("Microsoft.DBforPostgreSQL/flexibleServers"));
        Assert.Equal("[if(parameters('publicNetworkAccess'), 'Enabled', 'Disabled')]", server["properties"]!["network"]!["publicNetworkAccess"]!.ToString());
        // Firewall rules exist only with a public endpoint.
        var rules = Assert.Single(t.Resources("Microsoft.DBforPostgreSQL/flexibleServers/firewallRules").Select(r => r["copy"]).OfType<JsonObject>());
        Assert.StartsWith("[length(if(parameters('publicNetworkAccess'), ", rules["count"]!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_firewall_rule_admits_every_azure_service_unless_the_deployer_opts_in()
    {
        var t = await CompiledTemplate.GetAsync();

        Assert.Equal(false, t.DefaultOf("postgresAllowAzureServices")?.GetValue<bool>());
        Assert.Equal(false, t.Effective(t.Parameters, "postgresAllowAzureServices")?.GetValue<bool>());
        Assert.Equal(false, t.Effective(t.TestParameters, "postgresAllowAzureServices")?.GetValue<bool>());
        Assert.Equal(0, (t.Effective(t.Parameters, "postgresFirewallRules") as JsonArray)?.Count ?? 0);
        // 0.0.0.0 appears in exactly one expression, the one guarded by the opt-in.
        var expressions = t.AllObjects().SelectMany(o => o.Select(p => p.Value)).OfType<JsonValue>()
            .Select(v => v.ToString()).Where(v => v.StartsWith('[') && v.Contains("0.0.0.0", StringComparison.Ordinal)).ToList();
        var guarded = Assert.Single(expressions);
        Assert.Contains("if(parameters('allowAzureServices'), ", guarded, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Storage_accounts_deny_public_network_access_when_the_network_is_private()
    {
        var t = await CompiledTemplate.GetAsync();

        foreach (var module in new[] { "host-storage", "archive-storage" })
        {
            Assert.Equal("[variables('isPrivate')]", t.Module(module)["properties"]!["parameters"]!["privateOnly"]!["value"]!.ToString());
        }

        var accounts = t.Resources("Microsoft.Storage/storageAccounts").ToList();
        Assert.Equal(2, accounts.Count);
        Assert.All(accounts, a =>
        {
            var properties = a["properties"]!;
            Assert.Equal("[if(parameters('privateOnly'), 'Disabled', 'Enabled')]", properties["publicNetworkAccess"]!.ToString());
            Assert.Equal("[if(parameters('privateOnly'), 'Deny', 'Allow')]", properties["networkAcls"]!["defaultAction"]!.ToString());
            Assert.False(properties["allowBlobPublicAccess"]!.GetValue<bool>());
        });
    }

    [Fact]
    public async Task The_archive_policy_is_locked_in_production_and_unlocked_only_for_the_named_test_deployment()
    {
        var t = await CompiledTemplate.GetAsync();

        Assert.Equal("Locked", t.DefaultOf("archiveImmutabilityPolicyState")?.ToString());
        Assert.Equal("Locked", CompiledTemplate.ValueIn(t.Parameters, "archiveImmutabilityPolicyState")?.ToString());
        Assert.Equal("Unlocked", CompiledTemplate.ValueIn(t.TestParameters, "archiveImmutabilityPolicyState")?.ToString());
        Assert.Equal("test", CompiledTemplate.ValueIn(t.TestParameters, "environmentName")?.ToString());
        // The template refuses Unlocked for any environment not named test...
        var state = t.Template["variables"]!["archivePolicyState"]!.ToString();
        Assert.StartsWith("[if(and(equals(parameters('archiveImmutabilityPolicyState'), 'Unlocked'), not(startsWith(parameters('environmentName'), 'test'))), fail(", state, StringComparison.Ordinal);
        // ...writes the (unlocked) policy only when asked for Unlocked...
        var policy = Assert.Single(t.Resources("Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"));
        Assert.Equal("[equals(parameters('immutabilityPolicyState'), 'Unlocked')]", policy["condition"]!.ToString());
        Assert.False(policy["properties"]!["allowProtectedAppendWrites"]!.GetValue<bool>());
        // ...and otherwise the release locks it before anything can write an archive.
        Assert.Contains("archiveImmutabilityPolicyState", t.OutputNames);
        var deploy = File.ReadAllText(Path.Combine(Repo.Workflows, "deploy.yml"));
        var infra = deploy.IndexOf("az deployment group create", StringComparison.Ordinal);
        var lockStep = deploy.IndexOf("bash infra/archive-policy.sh", StringComparison.Ordinal);
        var migrate = deploy.IndexOf("-- migrate", StringComparison.Ordinal);
        Assert.True(infra >= 0 && lockStep > infra && migrate > lockStep, $"deploy.yml: infra {infra}, archive lock {lockStep}, migrate {migrate}");
        Assert.Contains("if: steps.infra.outputs.archiveImmutabilityPolicyState == 'Locked'", deploy, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_parameter_file_but_the_test_deployment_keeps_the_archive_policy_locked()
    {
        foreach (var file in Repo.Files(Repo.Infra, "*.bicepparam").Where(f => f != Repo.Relative(Repo.TestParameters)))
        {
            var text = await File.ReadAllTextAsync(Repo.Full(file));
            Assert.DoesNotContain("'Unlocked'", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_host_buffers_only_small_request_bodies()
    {
        var t = await CompiledTemplate.GetAsync();
        var settings = t.AppSettings();

        Assert.True(settings.TryGetValue("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", out var raw), "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT is not set: the host would buffer 100 MB bodies");
        var limit = int.Parse(raw!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(limit, RequestBody.MaxBytes, 1024 * 1024);
        var sample = JsonNode.Parse(await File.ReadAllTextAsync(Repo.SettingsSample))!["Values"]!["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"];
        if (sample is not null)
        {
            Assert.Equal(raw, sample.ToString());
        }
    }

    [Fact]
    public async Task Cors_admits_the_origins_of_one_parameter_never_any_origin()
    {
        var t = await CompiledTemplate.GetAsync();

        var site = Assert.Single(t.Resources("Microsoft.Web/sites"));
        var cors = site["properties"]!["siteConfig"]!["cors"]!;
        Assert.Equal("[parameters('corsAllowedOrigins')]", cors["allowedOrigins"]!.ToString());
        Assert.False(cors["supportCredentials"]!.GetValue<bool>());
        Assert.Equal("[variables('corsOrigins')]", t.Module("function-app")["properties"]!["parameters"]!["corsAllowedOrigins"]!["value"]!.ToString());
        Assert.StartsWith("[if(contains(parameters('corsAllowedOrigins'), '*'), fail(", t.Template["variables"]!["corsOrigins"]!.ToString(), StringComparison.Ordinal);
        var setting = Cors.AllowedOriginsSetting.Replace(":", "__", StringComparison.Ordinal);
        Assert.Equal("[join(variables('corsOrigins'), ',')]", t.AppSettings()[setting]);
        Assert.Equal(0, (t.DefaultOf("corsAllowedOrigins") as JsonArray)?.Count);
        foreach (var parameters in new[] { t.Parameters, t.TestParameters })
        {
            var origins = (t.Effective(parameters, "corsAllowedOrigins") as JsonArray)!.Select(o => o!.ToString()).ToList();
            Assert.DoesNotContain("*", origins);
            Assert.All(origins, o => Assert.StartsWith("https://", o, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Entra_tokens_name_the_trader_by_oid_and_trader_routes_need_the_scope()
    {
        var t = await CompiledTemplate.GetAsync();
        var settings = t.AppSettings();

        Assert.Equal("oid", settings["Auth__TraderIdClaim"]);
        Assert.Equal("[parameters('authRequiredScope')]", settings["Auth__RequiredScope"]);
        Assert.Equal("Orders.Trade", t.DefaultOf("authRequiredScope")?.ToString());
        Assert.Equal("Orders.Trade", t.Effective(t.Parameters, "authRequiredScope")?.ToString());
        Assert.Equal("true", settings["Auth__RequireHttpsMetadata"]);
    }
}
