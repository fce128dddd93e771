namespace OrderFunctions.Core.Http;

/// <summary>
/// The API's limits on what a request may carry, each defined here once. One layer per rule: the handlers refuse
/// a request that is malformed (shape, types, format) or beyond these limits with 400 VALIDATION_ERROR naming the
/// field, before the database sees it; the stored functions judge what passes against the state (the instrument's
/// steps and ticks, balance, margin, the position); the columns' types and CHECK constraints are the last backstop
/// (numeric(20, 8) holds less than 1e12, prices and quantities are &gt; 0, 0 &lt; margin_rate &lt;= 1).
/// </summary>
public static class ApiLimits
{
    /// <summary>Digits after the point of quantities, prices, amounts and rates (the columns are numeric(_, 8)).</summary>
    public const int Decimals = 8;

    /// <summary>A broker snapshot's average entry price is kept to 12 decimals (positions.avg_entry_price numeric(28, 12)).</summary>
    public const int AveragePriceDecimals = 12;

    /// <summary>Quantities, prices, sizes, steps and stops are below this (numeric(20, 8) holds nothing larger).</summary>
    public const decimal ValueLimit = 1e12m;

    /// <summary>A deposit is below this.</summary>
    public const decimal DepositLimit = 1e15m;

    /// <summary>Items in one request's array (instruments, prices, a snapshot's positions and closing prices).</summary>
    public const int MaxItems = 1000;

    /// <summary>Quantities, prices, contract sizes, steps, ticks and stops.</summary>
    public static readonly DecimalRange Positive = new(Decimals) { GreaterThan = 0m, Below = ValueLimit };

    /// <summary>A broker snapshot's average entry price.</summary>
    public static readonly DecimalRange AveragePrice = new(AveragePriceDecimals) { GreaterThan = 0m, Below = ValueLimit };

    public static readonly DecimalRange Deposit = new(Decimals) { GreaterThan = 0m, Below = DepositLimit };

    /// <summary>The share of the notional held as margin: (0, 1].</summary>
    public static readonly DecimalRange MarginRate = new(Decimals) { GreaterThan = 0m, AtMost = 1m };

    /// <summary>The share of the notional charged as commission: [0, 1).</summary>
    public static readonly DecimalRange CommissionRate = new(Decimals) { AtLeast = 0m, Below = 1m };
}

/// <summary>
/// Where a decimal field may lie: each bound optional, exclusive (<see cref="GreaterThan"/>, <see cref="Below"/>) or
/// inclusive (<see cref="AtLeast"/>, <see cref="AtMost"/>), with at most <see cref="MaxDecimals"/> digits after the point.
/// </summary>
public sealed record DecimalRange(int MaxDecimals)
{
    public decimal? GreaterThan { get; init; }

    public decimal? AtLeast { get; init; }

    public decimal? Below { get; init; }

    public decimal? AtMost { get; init; }

    /// <summary>Integer digits a number in the range can have, so that a longer one is refused before it is parsed.</summary>
    internal int MaxIntegerDigits => ExactDecimal.IntegerDigitsOf(Below ?? AtMost ?? decimal.MaxValue);
}
