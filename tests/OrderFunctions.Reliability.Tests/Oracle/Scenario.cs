using System.Globalization;
using System.Text;
using CsCheck;

namespace OrderFunctions.Reliability.Tests.Oracle;

/// <summary>
/// One instrument of a scenario. Terms are drawn from small sets whose products stay exact in decimal
/// (at most 28 significant digits), so the oracle's arithmetic is PostgreSQL's numeric arithmetic.
/// </summary>
internal sealed record InstrumentPlan(decimal ContractSize, decimal MarginRate, decimal CommissionRate, decimal QtyStep, int MinSteps,
    decimal TickSize, int PriceTicks, bool Priced)
{
    public decimal InitialPrice => PriceTicks * TickSize;

    public InstrumentTerms Terms(string symbol) =>
        new(symbol, ContractSize, MarginRate, CommissionRate, MinSteps * QtyStep, QtyStep, TickSize);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"cs {ContractSize} margin {MarginRate} commission {CommissionRate} step {QtyStep} min {MinSteps} steps tick {TickSize} price {(Priced ? InitialPrice.ToString(CultureInfo.InvariantCulture) : "none")}");
}

/// <summary>How an order's quantity is chosen when the step runs, from the model's state at that moment.</summary>
internal enum Sizing
{
    /// <summary>Units × qty_step.</summary>
    Steps,

    /// <summary>Below min_qty (or half a step when min_qty is one step): VALIDATION_ERROR.</summary>
    BelowMinimum,

    /// <summary>Units × qty_step + half a step: VALIDATION_ERROR.</summary>
    OffStep,

    /// <summary>Exactly the open position, on the other side: a full close.</summary>
    ClosePosition,

    /// <summary>The open position plus units × qty_step, on the other side: a close and an open the other way.</summary>
    FlipPosition,

    /// <summary>As much as 9/10 of the free margin pays for (at least min_qty): a leveraged account a price move can stop out.</summary>
    MostOfTheMargin,
}

internal abstract record Step;

/// <summary>
/// A market or (immediate-or-cancel) limit order; a limit is the current price ± LimitTicks ticks (+ half a tick when OffTick).
/// With StopTicks, a stop-loss that many ticks on the loss side of the current price (negative: the wrong side), and
/// with ProfitTicks a take-profit that many ticks on the profit side; half a tick off when OffTickStop. ReduceOnly sends
/// reduce_only: true.
/// </summary>
internal sealed record PlaceOrder(int Instrument, bool Buy, bool Limit, Sizing Sizing, int Units, int LimitTicks, bool OffTick,
    int? StopTicks = null, int? ProfitTicks = null, bool OffTickStop = false, bool ReduceOnly = false) : Step;

/// <summary>An admin upsert of the instrument with last_price moved by BasisPoints (to the nearest tick) and the tradable flag.</summary>
internal sealed record MovePrice(int Instrument, int BasisPoints, bool Tradable) : Step;

/// <summary>A price feed's update (PUT /api/admin/prices) of the instrument by BasisPoints, to the nearest tick.</summary>
internal sealed record Tick(int Instrument, int BasisPoints) : Step;

/// <summary>A feed's price that moves BasisPoints against the latest open position (a long's instrument down): stop-outs and gaps.</summary>
internal sealed record Adverse(int BasisPoints) : Step;

/// <summary>
/// PATCH /api/positions/{id} of the position number Pick: a stop-loss StopTicks ticks on its loss side of the current
/// price (null: clear it) when SetStop, a take-profit ProfitTicks ticks on its profit side (null: clear) when SetProfit.
/// </summary>
internal sealed record SetStops(int Pick, bool SetStop, int? StopTicks, bool SetProfit, int? ProfitTicks) : Step;

internal sealed record Deposit(int Cents) : Step;

/// <summary>Rolls back the stored order Pick places from the latest (modulo how many there are): mostly one of the last few.</summary>
internal sealed record Rollback(int Pick) : Step;

/// <summary>
/// The trader closes, with a market order of its quantity, the open position of the symbol of the latest stored order
/// (an order of theirs, or a close of the system's that a rollback may have undone): closes of positions in any state;
/// with ReduceOnly as reduce_only: true.
/// </summary>
internal sealed record CloseLatest(bool ReduceOnly) : Step;

/// <summary>Sends an earlier request's Idempotency-Key again, with the same payload or a different quantity.</summary>
internal sealed record Replay(int Pick, bool SamePayload) : Step;

/// <summary>
/// One trader's scenario; its risk batches take BatchLimit closes (Risk__CloseBatchSize). The stop-out level is one for
/// every scenario (<see cref="Scenarios.StopOutLevel"/>), as Risk__StopOutLevel is one for every instance of the app:
/// scenarios run side by side, and one's batch may well take another's work.
/// </summary>
internal sealed record Scenario(InstrumentPlan[] Instruments, decimal InitialDeposit, Step[] Steps, int BatchLimit)
{
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"deposit {InitialDeposit}, batches of {BatchLimit}");
        for (var i = 0; i < Instruments.Length; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n  instrument {i}: {Instruments[i]}");
        }

        for (var i = 0; i < Steps.Length; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n  {i}: {Steps[i]}");
        }

        return text.ToString();
    }
}

/// <summary>CsCheck generators of trading scenarios: 2–3 instruments and 5–40 steps that shrink to a minimal failing sequence.</summary>
internal static class Scenarios
{
    /// <summary>Risk__StopOutLevel's default.</summary>
    public const decimal StopOutLevel = 0.5m;

    private static readonly Gen<InstrumentPlan> Instrument = Gen.Select(
        Gen.OneOf(1m, 10m, 100m, 0.5m, 1000m),
        Gen.OneOf(0.01m, 0.02m, 0.05m, 0.1m, 0.25m, 1m),
        Gen.OneOf(0m, 0.0001m, 0.0002m, 0.001m, 0.003m),
        Gen.OneOf(1m, 0.1m, 0.01m, 0.001m),
        Gen.Int[1, 3],
        Gen.OneOf(0.01m, 0.0001m, 0.05m, 0.25m),
        Gen.Int[200, 20_000],
        Gen.Frequency((9, true), (1, false)),
        (contractSize, marginRate, commissionRate, qtyStep, minSteps, tick, ticks, priced) =>
            new InstrumentPlan(contractSize, marginRate, commissionRate, qtyStep, minSteps, tick, ticks, priced));

    // Mostly small orders, some large enough to exhaust margin or balance.
    private static readonly Gen<int> Units = Gen.Frequency(
        (6, (IGen<int>)Gen.Int[1, 20]),
        (3, Gen.Int[21, 500]),
        (1, Gen.Int[501, 20_000]));

    // A stop distance in ticks: mostly a few percent of the price away (prices are 200-20,000 ticks), sometimes on the
    // wrong side (negative), sometimes none.
    private static readonly Gen<int?> StopDistance = Gen.Frequency(
        (4, Gen.Const((int?)null)),
        (5, Gen.Int[1, 600].Select(t => (int?)t)),
        (1, Gen.Int[-20, 0].Select(t => (int?)t)));

    // The order's stops, and whether it is reduce_only (one in six).
    private static readonly Gen<(int? Stop, int? Profit, bool OffTick, bool ReduceOnly)> Stops = Gen.Select(
        StopDistance, StopDistance, Gen.Frequency((29, false), (1, true)), Gen.Frequency((5, false), (1, true)),
        (stop, profit, offTick, reduceOnly) => (stop, profit, offTick, reduceOnly));

    private static readonly Gen<Step> Order = Gen.Select(
        Gen.Int[0, 2],
        Gen.Bool,
        Gen.Frequency((3, false), (1, true)),
        Gen.Frequency((12, Sizing.Steps), (1, Sizing.BelowMinimum), (1, Sizing.OffStep), (3, Sizing.ClosePosition), (2, Sizing.FlipPosition),
            (5, Sizing.MostOfTheMargin)),
        Units,
        Gen.Int[-3, 3],
        Gen.Frequency((19, false), (1, true)),
        Stops,
        (instrument, buy, limit, sizing, units, limitTicks, offTick, stops) =>
            (Step)new PlaceOrder(instrument, buy, limit, sizing, units, limitTicks, offTick, stops.Stop, stops.Profit, stops.OffTick, stops.ReduceOnly));

    private static readonly Gen<Step> Move = Gen.Select(
        Gen.Int[0, 2],
        Gen.Int[-1500, 1500],
        Gen.Frequency((6, true), (1, false)),
        (instrument, basisPoints, tradable) => (Step)new MovePrice(instrument, basisPoints, tradable));

    private static readonly Gen<Step> PriceTick = Gen.Select(Gen.Int[0, 2], Gen.Int[-1200, 1200], (instrument, basisPoints) => (Step)new Tick(instrument, basisPoints));

    private static readonly Gen<Step> Patch = Gen.Select(
        Gen.Int[0, 1000], Gen.Bool, StopDistance, Gen.Bool, StopDistance,
        (pick, setStop, stop, setProfit, profit) => (Step)new SetStops(pick, setStop || !setProfit, stop, setProfit, profit));

    private static readonly Gen<Step> Step = Gen.Frequency(
        (60, (IGen<Step>)Order),
        (10, Move),
        (10, PriceTick),
        (5, Gen.Int[50, 2500].Select(basisPoints => (Step)new Adverse(basisPoints))),
        (6, Patch),
        (5, Gen.Int[1, 10_000_000].Select(cents => (Step)new Deposit(cents))),
        (12, Gen.Frequency((4, Gen.Const(0)), (2, Gen.Int[1, 3]), (1, Gen.Int[0, 1000])).Select(pick => (Step)new Rollback(pick))),
        (5, Gen.Bool.Select(reduceOnly => (Step)new CloseLatest(reduceOnly))),
        (8, Gen.Select(Gen.Int[0, 1000], Gen.Frequency((3, true), (1, false)), (pick, same) => (Step)new Replay(pick, same))));

    public static readonly Gen<Scenario> Any = Gen.Select(
        Instrument.Array[2, 3],
        Gen.Select(Gen.OneOf(100m, 1_000m, 10_000m, 100_000m, 1_000_000m), Gen.Int[1, 9], (magnitude, digit) => magnitude * digit),
        Step.Array[5, 40],
        Gen.OneOf(1, 2, 500),
        (instruments, deposit, steps, batch) => new Scenario(instruments, deposit, steps, batch));
}
