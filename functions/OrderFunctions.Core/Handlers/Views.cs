namespace OrderFunctions.Core.Handlers;

// Rows as the API returns them (snake_case in JSON). Dapper maps columns by name (underscores ignored).

public record OrderView
{
    public Guid Id { get; init; }
    public Guid TransactionId { get; init; }
    public string Symbol { get; init; } = "";
    public string Side { get; init; } = "";
    public string Type { get; init; } = "";

    /// <summary>trader, or system for the risk engine's closes (stop_loss, take_profit, liquidation).</summary>
    public string Source { get; init; } = "";
    public decimal Quantity { get; init; }
    public decimal FilledQuantity { get; init; }
    public decimal? LimitPrice { get; init; }
    public decimal? StopLoss { get; init; }
    public decimal? TakeProfit { get; init; }

    /// <summary>The order asked to only shrink or close a position (refused with REDUCE_ONLY_REJECTED otherwise).</summary>
    public bool ReduceOnly { get; init; }
    public string Status { get; init; } = "";
    public decimal? ExecutedPrice { get; init; }
    public DateTime? ExecutedAt { get; init; }
    public decimal? Commission { get; init; }
    public decimal? RealizedPnl { get; init; }

    /// <summary>The part of a loss beyond the balance that was written off: balance_delta = realized_pnl - commission + write_off.</summary>
    public decimal WriteOff { get; init; }
    public decimal? BalanceDelta { get; init; }
    public decimal? MarginDelta { get; init; }
    public Guid? PositionId { get; init; }
    public Guid? StrategyId { get; init; }
    public string? FailureReason { get; init; }
    public string? ErrorCode { get; init; }
    public Guid? RollbackTransactionId { get; init; }
    public DateTime? RolledBackAt { get; init; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>One order with its fill and position (GET /api/orders/{id}).</summary>
public sealed record OrderDetailView : OrderView
{
    public OrderDetailView(OrderView order)
        : base(order)
    {
    }

    public FillView? Fill { get; init; }
    public PositionView? Position { get; init; }
}

public sealed record FillView
{
    public Guid Id { get; init; }
    public decimal Quantity { get; init; }
    public decimal Price { get; init; }
    public decimal Commission { get; init; }
    public decimal RealizedPnl { get; init; }
    public string Venue { get; init; } = "";
    public DateTime FilledAt { get; init; }
}

/// <summary>A position as every route shows it (GET /api/orders/{id} embeds it; the listing adds to it).</summary>
public record PositionView
{
    public Guid Id { get; init; }
    public string Symbol { get; init; } = "";
    public string Side { get; init; } = "";
    public string Status { get; init; } = "";
    public decimal Quantity { get; init; }
    public decimal AvgEntryPrice { get; init; }
    public decimal UsedMargin { get; init; }
    public decimal RealizedPnl { get; init; }
    public decimal CommissionPaid { get; init; }
    public long Version { get; init; }
    public DateTime OpenedAt { get; init; }
    public DateTime? ClosedAt { get; init; }
}

/// <summary>A position in GET /api/positions: the position, its stops and strategy, marked at the instrument's last price.</summary>
public sealed record PositionListItem : PositionView
{
    public decimal? StopLoss { get; init; }
    public decimal? TakeProfit { get; init; }
    public decimal UnrealizedPnl { get; init; }
    public decimal? MarkPrice { get; init; }
    public Guid? StrategyId { get; init; }
}

public sealed record TradeView
{
    public Guid Id { get; init; }
    public Guid OrderId { get; init; }
    public Guid TransactionId { get; init; }
    public string Symbol { get; init; } = "";
    public string Side { get; init; } = "";
    public decimal Quantity { get; init; }
    public decimal Price { get; init; }
    public decimal Commission { get; init; }
    public decimal RealizedPnl { get; init; }
    public string Venue { get; init; } = "";
    public DateTime FilledAt { get; init; }
    public string OrderType { get; init; } = "";
    public string OrderStatus { get; init; } = "";
    public decimal? LimitPrice { get; init; }
    public Guid? PositionId { get; init; }
    public string InstrumentDescription { get; init; } = "";
    public decimal ContractSize { get; init; }
    public decimal? MarkPrice { get; init; }
    public Guid? StrategyId { get; init; }
    public string? StrategyName { get; init; }
}

/// <summary>An order joined with its fill and position in one row (one query), split into views.</summary>
internal sealed record OrderDetailRow : OrderView
{
    public Guid? FillId { get; init; }
    public decimal? FillQuantity { get; init; }
    public decimal? FillPrice { get; init; }
    public decimal? FillCommission { get; init; }
    public decimal? FillRealizedPnl { get; init; }
    public string? FillVenue { get; init; }
    public DateTime? FillFilledAt { get; init; }
    public string? PositionSymbol { get; init; }
    public string? PositionSide { get; init; }
    public string? PositionStatus { get; init; }
    public decimal? PositionQuantity { get; init; }
    public decimal? PositionAvgEntryPrice { get; init; }
    public decimal? PositionUsedMargin { get; init; }
    public decimal? PositionRealizedPnl { get; init; }
    public decimal? PositionCommissionPaid { get; init; }
    public long? PositionVersion { get; init; }
    public DateTime? PositionOpenedAt { get; init; }
    public DateTime? PositionClosedAt { get; init; }

    public OrderDetailView ToView() => new(this)
    {
        Fill = FillId is { } fillId
            ? new FillView
            {
                Id = fillId, Quantity = FillQuantity!.Value, Price = FillPrice!.Value, Commission = FillCommission!.Value,
                RealizedPnl = FillRealizedPnl!.Value, Venue = FillVenue!, FilledAt = FillFilledAt!.Value,
            }
            : null,
        Position = PositionId is { } positionId && PositionSymbol is not null
            ? new PositionView
            {
                Id = positionId, Symbol = PositionSymbol, Side = PositionSide!, Status = PositionStatus!,
                Quantity = PositionQuantity!.Value, AvgEntryPrice = PositionAvgEntryPrice!.Value, UsedMargin = PositionUsedMargin!.Value,
                RealizedPnl = PositionRealizedPnl!.Value, CommissionPaid = PositionCommissionPaid!.Value, Version = PositionVersion!.Value,
                OpenedAt = PositionOpenedAt!.Value, ClosedAt = PositionClosedAt,
            }
            : null,
    };
}
