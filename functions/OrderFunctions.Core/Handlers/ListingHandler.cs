using System.Text.Json.Nodes;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>
/// The trader's paginated listings. Keyset pagination on (timestamp, id) descending: each page is ONE
/// query, however large, served by the (user_id, timestamp DESC, id DESC) indexes.
/// </summary>
public sealed class ListingHandler(OrdersDatabase database)
{
    private static readonly string[] OrderStatuses = ["pending", "executing", "executed", "failed", "rejected", "rolled_back"];
    private static readonly string[] PositionStatuses = ["open", "closed"];
    private static readonly string[] PnlFilters = ["profit", "loss"];

    public async Task<ApiResponse> ListOrdersAsync(ApiContext context)
    {
        var query = new Query(context.Request);
        var status = query.Text("status", 16, OrderStatuses);
        var symbol = query.Text("symbol", 32);
        var from = query.Instant("from");
        var to = query.Instant("to");
        var limit = query.Limit();
        var cursor = query.PageCursor("orders");
        query.RejectUnknown();
        if (query.Errors.Count > 0)
        {
            return ApiResponse.Validation(query.Errors);
        }

        const string sql = """
            SELECT o.id, o.transaction_id, o.symbol, o.side, o.type, o.source, o.quantity, o.filled_quantity, o.limit_price,
                   o.stop_loss, o.take_profit, o.reduce_only, o.status, o.executed_price, o.executed_at, o.commission, o.realized_pnl, o.write_off,
                   o.balance_delta, o.margin_delta, o.position_id, o.strategy_id, o.failure_reason, o.error_code,
                   o.rollback_transaction_id, o.rolled_back_at, o.created_at
            FROM trading.orders o
            WHERE o.user_id = @UserId
              AND (@Status::text IS NULL OR o.status = @Status)
              AND (@Symbol::text IS NULL OR o.symbol = @Symbol)
              AND (@From::timestamptz IS NULL OR o.created_at >= @From)
              AND (@To::timestamptz IS NULL OR o.created_at < @To)
              AND (@CursorAt::timestamptz IS NULL OR (o.created_at, o.id) < (@CursorAt, @CursorId))
            ORDER BY o.created_at DESC, o.id DESC
            LIMIT @Take
            """;
        var userId = context.RequiredCaller.UserId;
        var rows = await database.QueryAsync(DbRole.Api, userId, sql,
            new { UserId = userId, Status = status, Symbol = symbol, From = from, To = to, CursorAt = cursor?.At, CursorId = cursor?.Id, Take = limit + 1 },
            Writes.Nothing, async grid => (await grid.ReadAsync<OrderView>()).ToList(), context.CancellationToken);
        return Page(rows, limit, "orders", o => new Cursor(o.CreatedAt, o.Id));
    }

    public async Task<ApiResponse> ListPositionsAsync(ApiContext context)
    {
        var query = new Query(context.Request);
        var status = query.Text("status", 8, PositionStatuses);
        var symbol = query.Text("symbol", 32);
        var limit = query.Limit();
        var cursor = query.PageCursor("positions");
        query.RejectUnknown();
        if (query.Errors.Count > 0)
        {
            return ApiResponse.Validation(query.Errors);
        }

        const string sql = """
            SELECT p.id, p.symbol, p.side, p.status, p.quantity, p.avg_entry_price, p.used_margin, p.stop_loss, p.take_profit,
                   p.commission_paid, p.realized_pnl, p.version, p.strategy_id, p.opened_at, p.closed_at,
                   i.last_price AS mark_price,
                   CASE WHEN p.status = 'open'
                        THEN trading.position_unrealized_pnl(p.side, p.quantity, p.avg_entry_price,
                                                             coalesce(i.last_price, p.avg_entry_price), i.contract_size)
                        ELSE 0 END AS unrealized_pnl
            FROM trading.positions p
            JOIN trading.instruments i ON i.symbol = p.symbol
            WHERE p.user_id = @UserId
              AND (@Status::text IS NULL OR p.status = @Status)
              AND (@Symbol::text IS NULL OR p.symbol = @Symbol)
              AND (@CursorAt::timestamptz IS NULL OR (p.opened_at, p.id) < (@CursorAt, @CursorId))
            ORDER BY p.opened_at DESC, p.id DESC
            LIMIT @Take
            """;
        var userId = context.RequiredCaller.UserId;
        var rows = await database.QueryAsync(DbRole.Api, userId, sql,
            new { UserId = userId, Status = status, Symbol = symbol, CursorAt = cursor?.At, CursorId = cursor?.Id, Take = limit + 1 },
            Writes.Nothing, async grid => (await grid.ReadAsync<PositionListItem>()).ToList(), context.CancellationToken);
        return Page(rows, limit, "positions", p => new Cursor(p.OpenedAt, p.Id));
    }

    public async Task<ApiResponse> ListTradesAsync(ApiContext context)
    {
        var query = new Query(context.Request);
        var symbol = query.Text("symbol", 32);
        var strategyId = query.Uuid("strategy_id");
        var from = query.Instant("from");
        var to = query.Instant("to");
        var pnl = query.Text("pnl", 6, PnlFilters);
        var limit = query.Limit();
        var cursor = query.PageCursor("trades");
        query.RejectUnknown();
        if (query.Errors.Count > 0)
        {
            return ApiResponse.Validation(query.Errors);
        }

        // Fills enriched with their order, instrument and strategy: joins, not a query per row.
        const string sql = """
            SELECT f.id, f.order_id, f.transaction_id, f.symbol, f.side, f.quantity, f.price, f.commission, f.realized_pnl,
                   f.venue, f.filled_at,
                   o.type AS order_type, o.status AS order_status, o.limit_price, o.position_id,
                   i.description AS instrument_description, i.contract_size, i.last_price AS mark_price,
                   f.strategy_id, s.name AS strategy_name
            FROM trading.fills f
            JOIN trading.orders o ON o.user_id = f.user_id AND o.id = f.order_id
            JOIN trading.instruments i ON i.symbol = f.symbol
            LEFT JOIN trading.strategies s ON s.user_id = f.user_id AND s.id = f.strategy_id
            WHERE f.user_id = @UserId
              AND (@Symbol::text IS NULL OR f.symbol = @Symbol)
              AND (@StrategyId::uuid IS NULL OR f.strategy_id = @StrategyId)
              AND (@From::timestamptz IS NULL OR f.filled_at >= @From)
              AND (@To::timestamptz IS NULL OR f.filled_at < @To)
              AND (@Pnl::text IS NULL OR (@Pnl = 'profit' AND f.realized_pnl > 0) OR (@Pnl = 'loss' AND f.realized_pnl < 0))
              AND (@CursorAt::timestamptz IS NULL OR (f.filled_at, f.id) < (@CursorAt, @CursorId))
            ORDER BY f.filled_at DESC, f.id DESC
            LIMIT @Take
            """;
        var userId = context.RequiredCaller.UserId;
        var rows = await database.QueryAsync(DbRole.Api, userId, sql,
            new
            {
                UserId = userId, Symbol = symbol, StrategyId = strategyId, From = from, To = to, Pnl = pnl,
                CursorAt = cursor?.At, CursorId = cursor?.Id, Take = limit + 1,
            },
            Writes.Nothing, async grid => (await grid.ReadAsync<TradeView>()).ToList(), context.CancellationToken);
        return Page(rows, limit, "trades", t => new Cursor(t.FilledAt, t.Id));
    }

    private static ApiResponse Page<T>(List<T> rows, int limit, string listing, Func<T, Cursor> keyOf)
    {
        string? next = null;
        if (rows.Count > limit)
        {
            rows.RemoveAt(rows.Count - 1);
            next = keyOf(rows[^1]).Encode(listing);
        }

        return ApiResponse.Success(200, new JsonObject { ["items"] = Json.ToNode(rows), ["next_cursor"] = next });
    }
}
