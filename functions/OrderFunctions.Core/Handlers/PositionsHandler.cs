using System.Text.Json.Nodes;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>The trader's own positions: changing their stops.</summary>
public sealed class PositionsHandler(OrdersDatabase database)
{
    /// <summary>
    /// PATCH a position's stop_loss and take_profit: a field left out stays, null clears it, a number sets it
    /// (validated by the database against the position's side, the last price and the tick).
    /// </summary>
    public async Task<ApiResponse> SetStopsAsync(ApiContext context)
    {
        if (!RouteIds.TryRead(context, "id", out var id, out var routeError))
        {
            return routeError;
        }

        var (stops, error) = await RequestBody.ReadFieldsAsync(context.Request, fields =>
        {
            var stops = new Stops(
                fields.Has("stop_loss"), fields.Decimal("stop_loss", required: false, ApiLimits.Positive),
                fields.Has("take_profit"), fields.Decimal("take_profit", required: false, ApiLimits.Positive));
            if (!stops.SetStopLoss && !stops.SetTakeProfit)
            {
                fields.Fail("body", "give stop_loss, take_profit or both (null clears one)");
            }

            return stops;
        }, context.CancellationToken);
        if (error is not null)
        {
            return error;
        }

        // Setting the same stops again is the same state.
        var envelope = await database.CallAsync(DbRole.Api, context.RequiredCaller.UserId,
            "SELECT trading.set_position_stops(@Id, @StopLoss, @TakeProfit, @SetStopLoss, @SetTakeProfit)",
            new { Id = id, stops!.StopLoss, stops.TakeProfit, stops.SetStopLoss, stops.SetTakeProfit }, Writes.Idempotently, context.CancellationToken);
        if ((string?)envelope["error_code"] == ErrorCodes.UserNotFound)
        {
            // No account, so no positions: as for another trader's position, indistinguishable from none.
            return ApiResponse.Error(ErrorCodes.PositionNotFound, "no such position", new JsonObject { ["position_id"] = id.ToString() });
        }

        return ApiResponse.FromEnvelope(envelope);
    }

    private sealed record Stops(bool SetStopLoss, decimal? StopLoss, bool SetTakeProfit, decimal? TakeProfit);
}
