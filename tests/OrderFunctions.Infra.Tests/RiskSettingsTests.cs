using Microsoft.Extensions.Configuration;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.Infra.Tests;

/// <summary>Risk__MarginCallLevel, Risk__StopOutLevel and Risk__CloseBatchSize as the app reads them: checked at start.</summary>
public sealed class RiskSettingsTests
{
    [Fact]
    public void Risk_settings_default_to_a_margin_call_at_100_percent_a_stop_out_at_50_and_batches_of_500()
    {
        var risk = Load([]).Risk;

        Assert.Equal((1.00m, 0.50m, 500), (risk.MarginCallLevel, risk.StopOutLevel, risk.CloseBatchSize));
    }

    [Fact]
    public void Risk_levels_are_read_as_exact_decimals()
    {
        var risk = Load(new() { ["Risk:MarginCallLevel"] = "1.5", ["Risk:StopOutLevel"] = "0.2", ["Risk:CloseBatchSize"] = "50" }).Risk;

        Assert.Equal((1.5m, 0.2m, 50), (risk.MarginCallLevel, risk.StopOutLevel, risk.CloseBatchSize));
    }

    [Theory]
    [InlineData("Risk:StopOutLevel", "0", "Risk__StopOutLevel")]
    [InlineData("Risk:StopOutLevel", "-0.5", "Risk__StopOutLevel")]
    [InlineData("Risk:MarginCallLevel", "100.01", "Risk__MarginCallLevel")]
    [InlineData("Risk:MarginCallLevel", "half", "Risk__MarginCallLevel")]
    [InlineData("Risk:StopOutLevel", "0.123456789", "Risk__StopOutLevel")]
    [InlineData("Risk:StopOutLevel", "1.2", "Risk__StopOutLevel")]
    [InlineData("Risk:CloseBatchSize", "0", "Risk__CloseBatchSize")]
    public void An_impossible_risk_setting_stops_the_app_naming_it(string key, string value, string named)
    {
        var e = Assert.Throws<InvalidOperationException>(() => Load(new() { [key] = value }));

        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    private static OrderFunctionsSettings Load(Dictionary<string, string?> values) =>
        OrderFunctionsSettings.Load(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
}
