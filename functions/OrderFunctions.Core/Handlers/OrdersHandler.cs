using System.Text.Json.Nodes;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Core.Telemetry;

namespace OrderFunctions.Core.Handlers;

/// <summary>Executing, reading, rolling back and checking orders.</summary>
public sealed class OrdersHandler(OrdersDatabase database, PublishedChainHeads publishedHeads)
{
    private static readonly string[] Sides = ["buy", "sell"];
    private static readonly string[] Types = ["market", "limit"];
    private static readonly TimeSpan PublishedHeadsBudget = TimeSpan.FromSeconds(5);

    public async Task<ApiResponse> ExecuteAsync(ApiContext context)
    {
        var errors = new List<FieldError>();
        var key = Idempotency.ReadKey(context.Request, required: true, errors);

        var (order, bodyError) = await RequestBody.ReadFieldsAsync(context.Request, ReadOrder, context.CancellationToken, errors);
        if (bodyError is not null)
        {
            return bodyError;
        }

        const string sql = """
            SELECT trading.execute_order(@Symbol, @Side, @Type, @Quantity, @LimitPrice, @Key, @Fingerprint,
                                         @StrategyId, @StopLoss, @TakeProfit, @ReduceOnly)
            """;
        // Keyed by Idempotency-Key: repeating the call after a lost connection cannot execute twice.
        var envelope = await database.CallAsync(DbRole.Api, context.RequiredCaller.UserId, sql,
            new
            {
                order!.Symbol, order.Side, order.Type, order.Quantity, order.LimitPrice, Key = key, Fingerprint = Fingerprint(order),
                order.StrategyId, order.StopLoss, order.TakeProfit, order.ReduceOnly,
            },
            Writes.Idempotently, context.CancellationToken);

        OrderTelemetry.TagOrder(envelope);
        return Idempotency.Respond(envelope);
    }

    public async Task<ApiResponse> GetAsync(ApiContext context)
    {
        if (!RouteIds.TryRead(context, "id", out var id, out var error))
        {
            return error;
        }

        const string sql = """
            SELECT o.id, o.transaction_id, o.symbol, o.side, o.type, o.source, o.quantity, o.filled_quantity, o.limit_price,
                   o.stop_loss, o.take_profit, o.reduce_only, o.status, o.executed_price, o.executed_at, o.commission, o.realized_pnl, o.write_off,
                   o.balance_delta, o.margin_delta, o.position_id, o.strategy_id, o.failure_reason, o.error_code,
                   o.rollback_transaction_id, o.rolled_back_at, o.created_at,
                   f.id AS fill_id, f.quantity AS fill_quantity, f.price AS fill_price, f.commission AS fill_commission,
                   f.realized_pnl AS fill_realized_pnl, f.venue AS fill_venue, f.filled_at AS fill_filled_at,
                   p.symbol AS position_symbol, p.side AS position_side, p.status AS position_status,
                   p.quantity AS position_quantity, p.avg_entry_price AS position_avg_entry_price,
                   p.used_margin AS position_used_margin, p.realized_pnl AS position_realized_pnl,
                   p.commission_paid AS position_commission_paid, p.version AS position_version,
                   p.opened_at AS position_opened_at, p.closed_at AS position_closed_at
            FROM trading.orders o
            LEFT JOIN trading.fills f ON f.user_id = o.user_id AND f.order_id = o.id
            LEFT JOIN trading.positions p ON p.user_id = o.user_id AND p.id = o.position_id
            WHERE o.user_id = @UserId AND o.id = @Id
            """;
        var row = await database.QueryAsync(DbRole.Api, context.RequiredCaller.UserId, sql, new { context.RequiredCaller.UserId, Id = id },
            Writes.Nothing, grid => grid.ReadSingleOrDefaultAsync<OrderDetailRow>(), context.CancellationToken);
        var view = row?.ToView();

        // Another trader's order is invisible under row-level security: indistinguishable from none.
        return view is null
            ? ApiResponse.Error(ErrorCodes.OrderNotFound, "no such order", new JsonObject { ["order_id"] = id.ToString() })
            : ApiResponse.Success(200, view);
    }

    public async Task<ApiResponse> RollbackAsync(ApiContext context)
    {
        if (!RouteIds.TryRead(context, "id", out var id, out var error))
        {
            return error;
        }

        var (reason, bodyError) = await RequestBody.ReadFieldsAsync(context.Request,
            fields => fields.String("reason", required: true, maxLength: 500), context.CancellationToken);
        if (bodyError is not null)
        {
            return bodyError;
        }

        // The rollback acts for the order's owner: maintenance reads the owner, then the function runs
        // for that user, all in one round trip.
        const string sql = """
            SELECT set_config('app.user_id', coalesce((SELECT user_id::text FROM trading.orders WHERE id = @Id LIMIT 1), ''), true);
            SELECT trading.rollback_order_execution(@Id, @Reason);
            """;
        var envelope = await database.QueryAsync(DbRole.Maintenance, null, sql, new { Id = id, Reason = reason }, Writes.NotIdempotently,
            async grid =>
            {
                await grid.ReadAsync();
                return JsonNode.Parse(await grid.ReadSingleAsync<string>())!.AsObject();
            },
            context.CancellationToken);

        if ((string?)envelope["error_code"] == ErrorCodes.UserNotFound)
        {
            return ApiResponse.Error(ErrorCodes.OrderNotFound, "no such order", new JsonObject { ["order_id"] = id.ToString() });
        }

        return ApiResponse.FromEnvelope(envelope);
    }

    public async Task<ApiResponse> CheckIntegrityAsync(ApiContext context)
    {
        if (!RouteIds.TryRead(context, "id", out var id, out var error))
        {
            return error;
        }

        var userId = context.RequiredCaller.UserId;
        var published = await PublishedHeadOfAsync(userId, context.CancellationToken);
        var envelope = await database.CallAsync(DbRole.Api, userId,
            "SELECT trading.validate_transaction_integrity(@Id, @Published::jsonb)", new { Id = id, Published = published?.ToJsonString() },
            Writes.Nothing, context.CancellationToken);
        return ApiResponse.FromEnvelope(envelope);
    }

    /// <summary>
    /// What trading.validate_transaction_integrity compares the trader's chains with: the latest publication's heads of
    /// this account, null when nothing is published (or no archive is configured), or why the archive could not be read.
    /// </summary>
    private async Task<JsonObject?> PublishedHeadOfAsync(Guid userId, CancellationToken cancellationToken)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(PublishedHeadsBudget);
        try
        {
            var latest = await publishedHeads.LatestAsync(fresh: false, bound.Token).WaitAsync(PublishedHeadsBudget, cancellationToken);
            return latest is null
                ? null
                : new JsonObject
                {
                    ["blob_name"] = latest.BlobName,
                    ["published_at"] = Json.Format(latest.PublishedAt.UtcDateTime),
                    ["head"] = latest.Heads.TryGetValue(userId, out var head) ? JsonNode.Parse(head) : null,
                };
        }
        catch (ArchiveStoreException e) when (e.NotConfigured)
        {
            return null;
        }
        catch (Exception e) when (e is ArchiveStoreException or ArchiveIntegrityException or TimeoutException
                                  || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new JsonObject { ["unavailable"] = e is ArchiveStoreException or ArchiveIntegrityException ? e.Message : "the archive did not answer in time" };
        }
    }

    private static OrderRequest ReadOrder(FieldReader fields)
    {
        var symbol = Instruments.ReadSymbol(fields);
        var side = fields.String("side", required: true, maxLength: 4, allowed: Sides);
        var type = fields.String("type", required: true, maxLength: 6, allowed: Types);
        var quantity = fields.Decimal("quantity", required: true, ApiLimits.Positive);
        var limitPrice = fields.Decimal("limit_price", required: false, ApiLimits.Positive);
        if (type == "limit" && limitPrice is null && !fields.Errors.Any(e => e.Field == "limit_price"))
        {
            fields.Fail("limit_price", "is required for a limit order");
        }
        else if (type == "market" && limitPrice is not null)
        {
            fields.Fail("limit_price", "must be omitted for a market order");
        }

        var strategyId = fields.Uuid("strategy_id", required: false);
        var stopLoss = fields.Decimal("stop_loss", required: false, ApiLimits.Positive);
        var takeProfit = fields.Decimal("take_profit", required: false, ApiLimits.Positive);
        var reduceOnly = fields.Boolean("reduce_only", required: false) ?? false;
        if (reduceOnly)
        {
            // It can only shrink or close a position, which keeps its stops (PATCH /api/positions/{id} changes them).
            foreach (var (name, value) in new[] { ("stop_loss", stopLoss), ("take_profit", takeProfit) })
            {
                if (value is not null)
                {
                    fields.Fail(name, "must be omitted for a reduce_only order");
                }
            }
        }

        return new OrderRequest(symbol ?? "", side ?? "", type ?? "", quantity ?? 0, limitPrice, strategyId, stopLoss, takeProfit, reduceOnly);
    }

    /// <summary>
    /// The order's identity for idempotency: any difference in what would execute changes it. reduce_only joins it only
    /// when set, so the fingerprint of every other order is the one it had before the flag existed.
    /// </summary>
    internal static string Fingerprint(OrderRequest order)
    {
        object?[] parts = ["v1", order.Symbol, order.Side, order.Type, order.Quantity, order.LimitPrice, order.StrategyId, order.StopLoss, order.TakeProfit];
        return Idempotency.Fingerprint(order.ReduceOnly ? [.. parts, "reduce_only"] : parts);
    }

    internal sealed record OrderRequest(string Symbol, string Side, string Type, decimal Quantity, decimal? LimitPrice, Guid? StrategyId,
        decimal? StopLoss, decimal? TakeProfit, bool ReduceOnly);
}
