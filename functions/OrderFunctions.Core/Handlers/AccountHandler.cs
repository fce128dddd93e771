using OrderFunctions.Core.Api;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>The trader's own account and strategies.</summary>
public sealed class AccountHandler(OrdersDatabase database, RiskSettings risk)
{
    public async Task<ApiResponse> GetMineAsync(ApiContext context)
    {
        var query = new Query(context.Request);
        query.RejectUnknown();
        if (query.Errors.Count > 0)
        {
            return ApiResponse.Validation(query.Errors);
        }

        // Equity marks open positions at the instruments' last prices; the margin level is equity ÷ used margin
        // (none without margin in use), and below Risk__MarginCallLevel the account is flagged.
        const string sql = """
            SELECT a.user_id, a.status, a.balance, a.used_margin, a.realized_pnl, u.unrealized_pnl,
                   a.balance + u.unrealized_pnl AS equity,
                   a.balance + u.unrealized_pnl - a.used_margin AS free_margin,
                   CASE WHEN a.used_margin > 0 THEN round((a.balance + u.unrealized_pnl) / a.used_margin, 8) END AS margin_level,
                   a.used_margin > 0 AND a.balance + u.unrealized_pnl < @MarginCallLevel * a.used_margin AS margin_call,
                   (SELECT coalesce(sum(w.amount), 0) FROM trading.write_offs w WHERE w.user_id = a.user_id) AS written_off,
                   a.version, a.created_at, a.updated_at
            FROM trading.accounts a
            CROSS JOIN LATERAL (SELECT trading.account_unrealized_pnl(a.user_id) AS unrealized_pnl) u
            WHERE a.user_id = @UserId
            """;
        var userId = context.RequiredCaller.UserId;
        var account = await database.QueryAsync(DbRole.Api, userId, sql, new { UserId = userId, risk.MarginCallLevel }, Writes.Nothing,
            grid => grid.ReadSingleOrDefaultAsync<AccountView>(), context.CancellationToken);
        return account is null
            ? ApiResponse.Error(ErrorCodes.UserNotFound, "you have no account yet; an admin deposit opens one")
            : ApiResponse.Success(200, account with { MarginCallLevel = risk.MarginCallLevel, StopOutLevel = risk.StopOutLevel });
    }

    public async Task<ApiResponse> CreateStrategyAsync(ApiContext context)
    {
        var (name, bodyError) = await RequestBody.ReadFieldsAsync(context.Request,
            fields => fields.String("name", required: true, maxLength: 100), context.CancellationToken);
        if (bodyError is not null)
        {
            return bodyError;
        }

        // Creating a name the trader already has answers that strategy (200): repeating the call after a lost
        // connection ends in the same state and answers the id the first attempt created.
        var envelope = await database.CallAsync(DbRole.Api, context.RequiredCaller.UserId, "SELECT trading.create_strategy(@Name)",
            new { Name = name }, Writes.Idempotently, context.CancellationToken);
        return ApiResponse.FromEnvelope(envelope);
    }
}

public sealed record AccountView
{
    public Guid UserId { get; init; }
    public string Status { get; init; } = "";
    public decimal Balance { get; init; }
    public decimal UsedMargin { get; init; }
    public decimal RealizedPnl { get; init; }
    public decimal UnrealizedPnl { get; init; }
    public decimal Equity { get; init; }
    public decimal FreeMargin { get; init; }

    /// <summary>Equity ÷ used margin; null while no margin is in use.</summary>
    public decimal? MarginLevel { get; init; }

    /// <summary>The margin level is below <see cref="MarginCallLevel"/>.</summary>
    public bool MarginCall { get; init; }

    public decimal MarginCallLevel { get; init; }

    /// <summary>Below it the risk engine liquidates positions, largest loss first, until the level is back.</summary>
    public decimal StopOutLevel { get; init; }

    /// <summary>Losses beyond the balance the house wrote off, net of reversals.</summary>
    public decimal WrittenOff { get; init; }

    public long Version { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; init; }
}
