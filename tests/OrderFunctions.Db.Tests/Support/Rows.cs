namespace OrderFunctions.Db.Tests.Support;

// Rows as the tests read them back (as admin, past row-level security). Dapper maps snake_case columns.

internal sealed record AccountRow
{
    public Guid UserId { get; init; }
    public decimal Balance { get; init; }
    public decimal UsedMargin { get; init; }
    public decimal RealizedPnl { get; init; }
    public string Status { get; init; } = "";
    public long Version { get; init; }
}

internal sealed record PositionRow
{
    public Guid Id { get; init; }
    public string Symbol { get; init; } = "";
    public string Side { get; init; } = "";
    public decimal Quantity { get; init; }
    public decimal AvgEntryPrice { get; init; }
    public decimal UsedMargin { get; init; }
    public decimal CommissionPaid { get; init; }
    public decimal RealizedPnl { get; init; }
    public decimal? StopLoss { get; init; }
    public decimal? TakeProfit { get; init; }
    public string Status { get; init; } = "";
    public long Version { get; init; }
    public DateTime? ClosedAt { get; init; }
    public Guid? LastTransactionId { get; init; }
}

internal sealed record OrderRow
{
    public Guid UserId { get; init; }
    public Guid Id { get; init; }
    public string Symbol { get; init; } = "";
    public string Side { get; init; } = "";
    public string Type { get; init; } = "";
    public string Source { get; init; } = "";
    public decimal Quantity { get; init; }
    public decimal FilledQuantity { get; init; }
    public decimal? LimitPrice { get; init; }
    public bool ReduceOnly { get; init; }
    public string Status { get; init; } = "";
    public Guid TransactionId { get; init; }
    public string IdempotencyKey { get; init; } = "";
    public decimal? ExecutedPrice { get; init; }
    public decimal? Commission { get; init; }
    public decimal? BalanceDelta { get; init; }
    public decimal? MarginDelta { get; init; }
    public decimal? RealizedPnl { get; init; }
    public decimal WriteOff { get; init; }
    public Guid? PositionId { get; init; }
    public string? FailureReason { get; init; }
    public string? ErrorCode { get; init; }
    public string? Response { get; init; }
    public DateTime? RolledBackAt { get; init; }
    public Guid? RollbackTransactionId { get; init; }
}

internal sealed record FillRow
{
    public Guid OrderId { get; init; }
    public string Symbol { get; init; } = "";
    public string Side { get; init; } = "";
    public decimal Quantity { get; init; }
    public decimal Price { get; init; }
    public decimal Commission { get; init; }
    public decimal RealizedPnl { get; init; }
    public Guid TransactionId { get; init; }
}

internal sealed record ExecutionLogRow
{
    public long Seq { get; init; }
    public Guid OrderId { get; init; }
    public string Event { get; init; } = "";
    public string? Reason { get; init; }
    public string? ErrorCode { get; init; }
    public Guid TransactionId { get; init; }
}

internal sealed record AuditRow
{
    public long Id { get; init; }
    public Guid? OrderId { get; init; }
    public Guid? TransactionId { get; init; }
    public string Reason { get; init; } = "";
    public decimal BalanceBefore { get; init; }
    public decimal BalanceAfter { get; init; }
    public decimal MarginBefore { get; init; }
    public decimal MarginAfter { get; init; }
    public decimal EquityBefore { get; init; }
    public decimal EquityAfter { get; init; }
}

internal sealed record ErrorLogRow
{
    public string Severity { get; init; } = "";
    public string ErrorCode { get; init; } = "";
    public string Message { get; init; } = "";
    public Guid? OrderId { get; init; }
    public Guid? TransactionId { get; init; }
}

/// <summary>How many rows a trader has in every tenant table: "nothing was written" is "these did not change".</summary>
internal sealed record RowCounts
{
    public long Accounts { get; init; }
    public long Orders { get; init; }
    public long Positions { get; init; }
    public long Fills { get; init; }
    public long ExecutionLogs { get; init; }
    public long BalanceAuditLog { get; init; }
    public long ErrorLog { get; init; }
    public long WriteOffs { get; init; }
}

internal sealed record WriteOffRow
{
    public long Id { get; init; }
    public Guid? OrderId { get; init; }
    public Guid TransactionId { get; init; }
    public string Reason { get; init; } = "";
    public decimal Amount { get; init; }
}
