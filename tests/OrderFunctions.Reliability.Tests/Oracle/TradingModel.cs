using System.Globalization;

namespace OrderFunctions.Reliability.Tests.Oracle;

/// <summary>
/// Money as execute_order computes it (R__01, R__03): every amount rounded to 8 decimals half away from zero,
/// the weighted average entry price to 12, and unrealized PnL rounded per position.
/// </summary>
internal static class Money
{
    public static decimal Round8(decimal value) => Math.Round(value, 8, MidpointRounding.AwayFromZero);

    public static decimal Round12(decimal value) => Math.Round(value, 12, MidpointRounding.AwayFromZero);

    /// <summary>position_unrealized_pnl: (mark - entry) × quantity × contract size, negated for a short.</summary>
    public static decimal UnrealizedPnl(string side, decimal quantity, decimal avgEntryPrice, decimal markPrice, decimal contractSize) =>
        Round8((markPrice - avgEntryPrice) * quantity * contractSize * (side == "long" ? 1 : -1));

    public static string Text(decimal? value) => value is { } v ? (v / 1.000000000000000000000000000000000m).ToString(CultureInfo.InvariantCulture) : "null";
}

/// <summary>The reference data of one instrument (what instruments rows hold besides the price).</summary>
internal sealed record InstrumentTerms(string Symbol, decimal ContractSize, decimal MarginRate, decimal CommissionRate, decimal MinQty,
    decimal QtyStep, decimal TickSize);

internal sealed class ModelInstrument(InstrumentTerms terms, decimal? lastPrice)
{
    public InstrumentTerms Terms { get; } = terms;

    public decimal? LastPrice { get; set; } = lastPrice;

    public bool Tradable { get; set; } = true;
}

/// <summary>What a position row holds that the rules touch, as of one moment (the before-image of an order).</summary>
internal sealed record PositionImage(int Key, string Side, decimal Quantity, decimal AvgEntryPrice, decimal UsedMargin, decimal CommissionPaid,
    decimal RealizedPnl, string Status, long Version, decimal? StopLoss, decimal? TakeProfit);

internal sealed class ModelPosition
{
    public required int Key { get; init; }

    public required string Symbol { get; init; }

    /// <summary>The database's id, learned from the response of the order that opened it.</summary>
    public Guid? DbId { get; set; }

    public required string Side { get; set; }

    public decimal Quantity { get; set; }

    public decimal AvgEntryPrice { get; set; }

    public decimal UsedMargin { get; set; }

    public decimal CommissionPaid { get; set; }

    public decimal RealizedPnl { get; set; }

    public string Status { get; set; } = "open";

    public long Version { get; set; } = 1;

    public decimal? StopLoss { get; set; }

    public decimal? TakeProfit { get; set; }

    public PositionImage Image() => new(Key, Side, Quantity, AvgEntryPrice, UsedMargin, CommissionPaid, RealizedPnl, Status, Version, StopLoss, TakeProfit);

    /// <summary>The stop this price reaches or passes (the stop-loss first), or null: what the risk engine closes it for.</summary>
    public string? CrossedBy(decimal price) =>
        StopLoss is { } sl && (Side == "long" ? price <= sl : price >= sl) ? "stop_loss"
        : TakeProfit is { } tp && (Side == "long" ? price >= tp : price <= tp) ? "take_profit"
        : null;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"#{Key} {Symbol} {Status} {Side} qty {Money.Text(Quantity)} @ {Money.Text(AvgEntryPrice)} margin {Money.Text(UsedMargin)} sl {Money.Text(StopLoss)} tp {Money.Text(TakeProfit)} v{Version}");
}

/// <summary>One order request as execute_order receives it.</summary>
internal sealed record OrderRequest(string Symbol, string Side, string Type, decimal Quantity, decimal? LimitPrice, string Key,
    decimal? StopLoss = null, decimal? TakeProfit = null, bool ReduceOnly = false)
{
    /// <summary>The request's identity for idempotency, as the HTTP layer derives one: same order, same fingerprint.</summary>
    public string Fingerprint => string.Join('|', Symbol, Side, Type, Money.Text(Quantity), Money.Text(LimitPrice), Money.Text(StopLoss), Money.Text(TakeProfit),
        ReduceOnly ? "reduce_only" : "");

    public override string ToString() =>
        $"{Side} {Money.Text(Quantity)} {Symbol} {Type}{(LimitPrice is { } limit ? " limit " + Money.Text(limit) : "")}"
        + $"{(StopLoss is { } sl ? " sl " + Money.Text(sl) : "")}{(TakeProfit is { } tp ? " tp " + Money.Text(tp) : "")}{(ReduceOnly ? " reduce_only" : "")} key {Key}";
}

/// <summary>A predicted outcome: success or the error code, and the HTTP status the envelope carries.</summary>
internal sealed record Outcome(bool Success, string? ErrorCode, int Status)
{
    public static readonly Outcome Executed = new(true, null, 201);
    public static readonly Outcome RolledBack = new(true, null, 200);

    public static Outcome Error(string code, int status) => new(false, code, status);

    public override string ToString() => Success ? $"success {Status}" : $"{ErrorCode} {Status}";
}

/// <summary>An order the database stores: a trader's, executed (or later rolled back) or rejected, or a system close.</summary>
internal sealed class ModelOrder
{
    /// <summary>The trader's request; null for the risk engine's closes.</summary>
    public required OrderRequest? Request { get; init; }

    public required string Symbol { get; init; }

    /// <summary>market or limit (a trader's), stop_loss, take_profit or liquidation (the system's).</summary>
    public required string Type { get; init; }

    public bool IsSystem => Request is null;

    /// <summary>The executed price of a system close.</summary>
    public decimal? Price { get; init; }

    public decimal WriteOff { get; init; }

    public required Outcome Outcome { get; init; }

    public required string Status { get; set; }

    public Guid? DbId { get; set; }

    public Guid? TransactionId { get; set; }

    public Guid? RollbackTransactionId { get; set; }

    public decimal Commission { get; init; }

    public decimal RealizedPnl { get; init; }

    public decimal BalanceDelta { get; init; }

    public decimal MarginDelta { get; init; }

    /// <summary>The position the order left (the one it opened on a flip).</summary>
    public ModelPosition? Position { get; init; }

    /// <summary>The open position of the symbol before the order; null if it opened the first one.</summary>
    public PositionImage? Before { get; init; }

    public long PositionVersionAfter { get; init; }

    public override string ToString() => Request?.ToString()
        ?? string.Create(CultureInfo.InvariantCulture, $"system {Type} of {Position} at {Money.Text(Price)}");
}

/// <summary>What the response of an executed order must say.</summary>
internal sealed record Execution(decimal Price, decimal Commission, decimal RealizedPnl, decimal WriteOff, decimal MarginDelta, decimal Balance,
    decimal UsedMargin, ModelPosition Position, ModelPosition? Opened);

/// <summary>How execute_order treats a request: refused before anything is stored, stored anew, or answered from its key.</summary>
internal enum Handling
{
    NotStored,
    Stored,
    Replayed,
    KeyReused,
}

internal sealed record OrderPrediction(Outcome Outcome, Handling Handling, ModelOrder? Order, Execution? Execution);

/// <summary>
/// The oracle: one trader's account, positions (one open per symbol, netting) and orders under the rules of
/// R__03_execute_order.sql, R__04_balance_and_rollback.sql and R__12_risk.sql, written from the rules the SQL
/// comments and the README state: reduce-only orders never refused (a loss beyond the balance written off),
/// stops validated on entry and closed by the risk engine at the price that crosses them, and a stop-out that
/// liquidates the largest loss first while the margin level is below the stop-out level.
/// Each method predicts an outcome and applies it to the model exactly when the database should apply it.
/// </summary>
internal sealed class TradingModel(decimal stopOutLevel)
{
    private readonly Dictionary<string, ModelInstrument> _instruments = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ModelOrder> _byKey = new(StringComparer.Ordinal);
    private readonly List<ModelPosition> _positions = [];
    private readonly List<ModelOrder> _orders = [];

    public decimal Balance { get; private set; }

    public decimal UsedMargin { get; private set; }

    public decimal RealizedPnl { get; private set; }

    /// <summary>The net of the write_offs ledger: what the house wrote off, less what rollbacks reversed.</summary>
    public decimal WrittenOff { get; private set; }

    public decimal StopOutLevel => stopOutLevel;

    /// <summary>Everything deposited: with the commissions and realized PnL of executed orders it explains the balance.</summary>
    public decimal Deposited { get; private set; }

    public IReadOnlyList<ModelPosition> Positions => _positions;

    /// <summary>Every order the database stores, in the order they were placed.</summary>
    public IReadOnlyList<ModelOrder> Orders => _orders;

    public ModelInstrument Instrument(string symbol) => _instruments[symbol];

    public void AddInstrument(InstrumentTerms terms, decimal? lastPrice) => _instruments.Add(terms.Symbol, new ModelInstrument(terms, lastPrice));

    public void SetPrice(string symbol, decimal price, bool tradable)
    {
        var instrument = _instruments[symbol];
        instrument.LastPrice = price;
        instrument.Tradable = tradable;
    }

    public void Deposit(decimal amount)
    {
        Balance += amount;
        Deposited += amount;
    }

    public ModelPosition? OpenPosition(string symbol) => _positions.SingleOrDefault(p => p.Symbol == symbol && p.Status == "open");

    public OrderPrediction PlaceOrder(OrderRequest request)
    {
        // Input checks come before the account lock and the idempotency lookup.
        if (request.Type == "limit" && request.LimitPrice is not > 0)
        {
            return Invalid();
        }

        if (_byKey.TryGetValue(request.Key, out var prior))
        {
            return prior.Request!.Fingerprint == request.Fingerprint
                ? new OrderPrediction(prior.Outcome, Handling.Replayed, prior, null)
                : new OrderPrediction(Outcome.Error("IDEMPOTENCY_KEY_REUSED", 422), Handling.KeyReused, prior, null);
        }

        var instrument = _instruments[request.Symbol];
        var terms = instrument.Terms;
        if (request.Quantity < terms.MinQty
            || request.Quantity % terms.QtyStep != 0
            || (request.LimitPrice is { } limit && limit % terms.TickSize != 0)
            || (instrument.LastPrice is { } last && request.Quantity * terms.ContractSize * last >= 1e15m))
        {
            // Nothing is stored: the key stays free for a corrected retry.
            return Invalid();
        }

        if (StopsProblem(request.Side == "buy" ? "long" : "short", request.StopLoss, request.TakeProfit, instrument.LastPrice, terms.TickSize))
        {
            return Invalid();
        }

        if (!instrument.Tradable || instrument.LastPrice is null)
        {
            return Reject(request, "INSTRUMENT_NOT_TRADABLE", 409);
        }

        var price = instrument.LastPrice.Value;
        if (request.Type == "limit" && ((request.Side == "buy" && price > request.LimitPrice) || (request.Side == "sell" && price < request.LimitPrice)))
        {
            return Reject(request, "PRICE_NOT_MARKETABLE", 409);
        }

        var position = OpenPosition(request.Symbol);
        var newSide = request.Side == "buy" ? "long" : "short";
        var commission = Money.Round8(request.Quantity * terms.ContractSize * price * terms.CommissionRate);
        decimal close = 0, realized = 0, released = 0;
        if (position is not null && position.Side != newSide)
        {
            close = Math.Min(request.Quantity, position.Quantity);
            realized = Money.UnrealizedPnl(position.Side, close, position.AvgEntryPrice, price, terms.ContractSize);
            released = close == position.Quantity ? position.UsedMargin : Money.Round8(position.UsedMargin * close / position.Quantity);
        }

        var open = request.Quantity - close;
        if (open == 0 && (request.StopLoss is not null || request.TakeProfit is not null))
        {
            // An order that only reduces a position sets no stops: refused, nothing stored.
            return Invalid();
        }

        if (request.ReduceOnly && open > 0)
        {
            // reduce_only, but it would open or add exposure (no position, the same side, more than the position).
            return Reject(request, "REDUCE_ONLY_REJECTED", 409);
        }

        var margin = Money.Round8(open * terms.ContractSize * price * terms.MarginRate);
        var balance = Balance + realized - commission;
        var used = UsedMargin - released + margin;
        decimal writeOff = 0;
        if (open == 0)
        {
            // Reduce-only: never refused; what the balance cannot pay is written off.
            if (balance < 0)
            {
                writeOff = -balance;
                balance = 0;
            }
        }
        else if (balance < 0)
        {
            return Reject(request, "INSUFFICIENT_BALANCE", 400);
        }
        else
        {
            // Free margin after the order, every open position marked at its last price (this one at the execution price).
            var free = balance - used
                + _positions.Where(p => p.Status == "open" && p.Symbol != request.Symbol)
                    .Sum(p => Money.UnrealizedPnl(p.Side, p.Quantity, p.AvgEntryPrice, _instruments[p.Symbol].LastPrice ?? p.AvgEntryPrice,
                        _instruments[p.Symbol].Terms.ContractSize))
                + (position is null ? 0 : Money.UnrealizedPnl(position.Side, position.Quantity - close, position.AvgEntryPrice, price, terms.ContractSize));
            if (free < 0)
            {
                return Reject(request, "INSUFFICIENT_MARGIN", 400);
            }
        }

        var before = position?.Image();
        ModelPosition result;
        ModelPosition? opened = null;
        if (position is null)
        {
            result = opened = NewPosition(request.Symbol, newSide, request.Quantity, price, margin, commission, request.StopLoss, request.TakeProfit);
        }
        else if (close == 0)
        {
            position.AvgEntryPrice = Money.Round12((position.AvgEntryPrice * position.Quantity + price * request.Quantity) / (position.Quantity + request.Quantity));
            position.Quantity += request.Quantity;
            position.UsedMargin += margin;
            position.CommissionPaid += commission;
            position.StopLoss = request.StopLoss ?? position.StopLoss;
            position.TakeProfit = request.TakeProfit ?? position.TakeProfit;
            position.Version++;
            result = position;
        }
        else if (close < position.Quantity)
        {
            position.Quantity -= close;
            position.UsedMargin -= released;
            position.RealizedPnl += realized;
            position.CommissionPaid += commission;
            position.Version++;
            result = position;
        }
        else
        {
            position.Status = "closed";
            position.Quantity = 0;
            position.UsedMargin = 0;
            position.RealizedPnl += realized;
            position.CommissionPaid += open == 0 ? commission : 0;
            position.Version++;
            result = position;
            if (open > 0)
            {
                result = opened = NewPosition(request.Symbol, newSide, open, price, margin, commission, request.StopLoss, request.TakeProfit);
            }
        }

        Balance = balance;
        UsedMargin = used;
        RealizedPnl += realized;
        WrittenOff += writeOff;
        var order = new ModelOrder
        {
            Request = request,
            Symbol = request.Symbol,
            Type = request.Type,
            Outcome = Outcome.Executed,
            Status = "executed",
            Commission = commission,
            RealizedPnl = realized,
            WriteOff = writeOff,
            BalanceDelta = realized - commission + writeOff,
            MarginDelta = margin - released,
            Position = result,
            Before = before,
            PositionVersionAfter = result.Version,
        };
        Store(order);
        return new OrderPrediction(Outcome.Executed, Handling.Stored, order,
            new Execution(price, commission, realized, writeOff, margin - released, balance, used, result, opened));
    }

    /// <summary>set_position_stops (PATCH /api/positions/{id}): a null value with its flag set clears that stop.</summary>
    public Outcome SetStops(ModelPosition position, bool setStopLoss, decimal? stopLoss, bool setTakeProfit, decimal? takeProfit)
    {
        if (position.Status != "open")
        {
            return Outcome.Error("POSITION_NOT_OPEN", 409);
        }

        var instrument = _instruments[position.Symbol];
        var newStopLoss = setStopLoss ? stopLoss : position.StopLoss;
        var newTakeProfit = setTakeProfit ? takeProfit : position.TakeProfit;
        if (StopsProblem(position.Side, setStopLoss ? stopLoss : null, setTakeProfit ? takeProfit : null, instrument.LastPrice, instrument.Terms.TickSize)
            || StopsProblem(position.Side, newStopLoss, newTakeProfit, null, instrument.Terms.TickSize))
        {
            return Outcome.Error("VALIDATION_ERROR", 400);
        }

        position.StopLoss = newStopLoss;
        position.TakeProfit = newTakeProfit;
        position.Version++;
        return new Outcome(true, null, 200);
    }

    /// <summary>
    /// What the risk engine does after a price of <paramref name="symbol"/> was set (and the queue drained): close
    /// the open position whose stop the price reaches or passes, at that price; then, if the account held the
    /// symbol, liquidate while the margin level is below the stop-out level. Halted or unpriced: nothing.
    /// Returns the system closes in the order the database makes them.
    /// </summary>
    public IReadOnlyList<ModelOrder> OnPriceMoved(string symbol)
    {
        var instrument = _instruments[symbol];
        var closes = new List<ModelOrder>();
        if (!instrument.Tradable || instrument.LastPrice is not { } price)
        {
            return closes;
        }

        var position = OpenPosition(symbol);
        if (position is null)
        {
            return closes;
        }

        if (position.CrossedBy(price) is { } kind)
        {
            closes.Add(SystemClose(position, kind, price));
        }

        while (UsedMargin > 0 && Balance + Unrealized() < stopOutLevel * UsedMargin)
        {
            var largestLoss = _positions
                .Where(p => p.Status == "open" && _instruments[p.Symbol] is { Tradable: true, LastPrice: not null })
                .OrderBy(p => MarkedPnl(p)).ThenBy(p => p.Key)
                .FirstOrDefault();
            if (largestLoss is null)
            {
                break;
            }

            closes.Add(SystemClose(largestLoss, "liquidation", _instruments[largestLoss.Symbol].LastPrice!.Value));
        }

        return closes;
    }

    /// <summary>Equity less used margin, positions marked at last prices: what GET /api/accounts/me calls free_margin.</summary>
    public decimal FreeMargin() => Balance + Unrealized() - UsedMargin;

    /// <summary>Unrealized PnL of every open position at last prices (unpriced ones at their entry), as account_unrealized_pnl.</summary>
    private decimal Unrealized() => _positions.Where(p => p.Status == "open").Sum(MarkedPnl);

    private decimal MarkedPnl(ModelPosition p) =>
        Money.UnrealizedPnl(p.Side, p.Quantity, p.AvgEntryPrice, _instruments[p.Symbol].LastPrice ?? p.AvgEntryPrice, _instruments[p.Symbol].Terms.ContractSize);

    /// <summary>close_positions for one position: the whole of it at this price, a loss beyond the balance written off.</summary>
    private ModelOrder SystemClose(ModelPosition position, string kind, decimal price)
    {
        var terms = _instruments[position.Symbol].Terms;
        var commission = Money.Round8(position.Quantity * terms.ContractSize * price * terms.CommissionRate);
        var realized = Money.UnrealizedPnl(position.Side, position.Quantity, position.AvgEntryPrice, price, terms.ContractSize);
        var balance = Balance + realized - commission;
        var writeOff = Math.Max(0, -balance);
        var released = position.UsedMargin;
        var before = position.Image();
        position.Status = "closed";
        position.Quantity = 0;
        position.UsedMargin = 0;
        position.RealizedPnl += realized;
        position.CommissionPaid += commission;
        position.Version++;
        Balance = Math.Max(0, balance);
        UsedMargin -= released;
        RealizedPnl += realized;
        WrittenOff += writeOff;
        var order = new ModelOrder
        {
            Request = null,
            Symbol = position.Symbol,
            Type = kind,
            Outcome = Outcome.Executed,
            Status = "executed",
            Price = price,
            Commission = commission,
            RealizedPnl = realized,
            WriteOff = writeOff,
            BalanceDelta = realized - commission + writeOff,
            MarginDelta = -released,
            Position = position,
            Before = before,
            PositionVersionAfter = position.Version,
        };
        _orders.Add(order);
        return order;
    }

    /// <summary>stop_levels_error: off the tick, on the wrong side of the price (when there is one), or a pair out of order.</summary>
    private static bool StopsProblem(string side, decimal? stopLoss, decimal? takeProfit, decimal? price, decimal tick)
    {
        var isLong = side == "long";
        return stopLoss is { } sl && (sl % tick != 0 || (price is { } p1 && (isLong ? sl >= p1 : sl <= p1)))
            || takeProfit is { } tp && (tp % tick != 0 || (price is { } p2 && (isLong ? tp <= p2 : tp >= p2)))
            || stopLoss is { } s && takeProfit is { } t && (isLong ? s >= t : s <= t);
    }

    /// <summary>rollback_order_execution of a stored order: exact compensation while nothing changed since, else a conflict.</summary>
    public Outcome Rollback(ModelOrder order)
    {
        if (order.Status != "executed")
        {
            return Outcome.Error("INVALID_ORDER_STATE", 400);
        }

        var position = order.Position!;
        var before = order.Before;
        var flip = before is not null && before.Key != position.Key;
        var conflict = position.Version != order.PositionVersionAfter
            || (flip && Position(before!.Key).Version != before.Version + 1)
            || (before is { Status: "open" }
                && _positions.Any(p => p.Symbol == order.Symbol && p.Status == "open" && p.Key != before.Key && p.Key != position.Key))
            || Balance - order.BalanceDelta < 0
            || UsedMargin - order.MarginDelta < 0;
        if (conflict)
        {
            return Outcome.Error("ROLLBACK_CONFLICT", 409);
        }

        if (before is null || flip)
        {
            // The position the order opened is closed; what it had paid and realized stays on the closed row.
            position.Status = "closed";
            position.Quantity = 0;
            position.UsedMargin = 0;
            position.Version++;
        }

        if (before is not null)
        {
            var restored = Position(before.Key);
            restored.Side = before.Side;
            restored.Quantity = before.Quantity;
            restored.AvgEntryPrice = before.AvgEntryPrice;
            restored.UsedMargin = before.UsedMargin;
            restored.CommissionPaid = before.CommissionPaid;
            restored.RealizedPnl = before.RealizedPnl;
            restored.Status = before.Status;
            restored.StopLoss = before.StopLoss;
            restored.TakeProfit = before.TakeProfit;
            restored.Version++;
        }

        Balance -= order.BalanceDelta;
        UsedMargin -= order.MarginDelta;
        RealizedPnl -= order.RealizedPnl;
        WrittenOff -= order.WriteOff;
        order.Status = "rolled_back";
        return Outcome.RolledBack;
    }

    private ModelPosition Position(int key) => _positions[key];

    private ModelPosition NewPosition(string symbol, string side, decimal quantity, decimal price, decimal margin, decimal commission,
        decimal? stopLoss, decimal? takeProfit)
    {
        var position = new ModelPosition
        {
            Key = _positions.Count,
            Symbol = symbol,
            Side = side,
            Quantity = quantity,
            AvgEntryPrice = price,
            UsedMargin = margin,
            CommissionPaid = commission,
            StopLoss = stopLoss,
            TakeProfit = takeProfit,
        };
        _positions.Add(position);
        return position;
    }

    private static OrderPrediction Invalid() => new(Outcome.Error("VALIDATION_ERROR", 400), Handling.NotStored, null, null);

    private OrderPrediction Reject(OrderRequest request, string code, int status)
    {
        var order = new ModelOrder { Request = request, Symbol = request.Symbol, Type = request.Type, Outcome = Outcome.Error(code, status), Status = "rejected" };
        Store(order);
        return new OrderPrediction(order.Outcome, Handling.Stored, order, null);
    }

    private void Store(ModelOrder order)
    {
        _byKey.Add(order.Request!.Key, order);
        _orders.Add(order);
    }
}
