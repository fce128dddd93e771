using System.Text.Json;
using System.Text.Json.Serialization;

namespace OrderFunctions.Db.Tests.Support;

/// <summary>An instrument as trading.upsert_instruments takes it. Each test makes its own symbol.</summary>
internal sealed record Instrument(
    [property: JsonPropertyName("symbol")] string Symbol,
    [property: JsonPropertyName("contract_size")] decimal ContractSize,
    [property: JsonPropertyName("margin_rate")] decimal MarginRate,
    [property: JsonPropertyName("commission_rate")] decimal CommissionRate,
    [property: JsonPropertyName("last_price")] decimal? LastPrice,
    [property: JsonPropertyName("min_qty")] decimal MinQty = 0.01m,
    [property: JsonPropertyName("qty_step")] decimal QtyStep = 0.01m,
    [property: JsonPropertyName("tick_size")] decimal TickSize = 0.01m,
    [property: JsonPropertyName("tradable")] bool Tradable = true)
{
    /// <summary>A symbol no other test uses, valid for the instruments CHECK (upper case, digits).</summary>
    public static string NewSymbol() => "T" + Guid.NewGuid().ToString("N")[..12].ToUpperInvariant();

    public static Instrument New(decimal contractSize, decimal marginRate, decimal commissionRate, decimal? lastPrice) =>
        new(NewSymbol(), contractSize, marginRate, commissionRate, lastPrice);

    public static string ToJson(IEnumerable<Instrument> instruments) => JsonSerializer.Serialize(instruments);
}
