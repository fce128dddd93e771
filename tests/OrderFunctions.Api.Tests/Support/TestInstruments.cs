namespace OrderFunctions.Api.Tests.Support;

/// <summary>An instrument as the admin route takes it (serialized snake_case).</summary>
public sealed record Instrument(
    string Symbol,
    string Description,
    decimal ContractSize,
    decimal MarginRate,
    decimal CommissionRate,
    decimal MinQty,
    decimal QtyStep,
    decimal TickSize,
    decimal? LastPrice,
    bool Tradable);

/// <summary>The instruments every test class starts with.</summary>
public static class TestInstruments
{
    /// <summary>A forex pair: 100,000 units a lot, 2% margin, 0.002% commission, 0.01 lot steps.</summary>
    public static readonly Instrument EurUsd = new("EURUSD", "Euro / US dollar", 100_000m, 0.02m, 0.00002m, 0.01m, 0.01m, 0.00001m, 1.085m, true);

    /// <summary>A coin: one unit a contract, 10% margin, 0.1% commission, 0.001 steps.</summary>
    public static readonly Instrument Btc = new("BTC-USD", "Bitcoin / US dollar", 1m, 0.1m, 0.001m, 0.001m, 0.001m, 0.01m, 65_000m, true);

    /// <summary>Listed with a price but not tradable now.</summary>
    public static readonly Instrument Halted = new("HALTED", "Suspended from trading", 1m, 0.5m, 0m, 1m, 1m, 0.01m, 10m, false);

    public static IReadOnlyList<Instrument> All { get; } = [EurUsd, Btc, Halted];

    /// <summary>Money as the database rounds it: 8 decimals, half away from zero.</summary>
    public static decimal Money(decimal value) => Math.Round(value, 8, MidpointRounding.AwayFromZero);

    public static decimal Notional(Instrument instrument, decimal quantity, decimal price) => quantity * instrument.ContractSize * price;

    public static decimal Margin(Instrument instrument, decimal quantity, decimal price) =>
        Money(Notional(instrument, quantity, price) * instrument.MarginRate);

    public static decimal Commission(Instrument instrument, decimal quantity, decimal price) =>
        Money(Notional(instrument, quantity, price) * instrument.CommissionRate);
}
