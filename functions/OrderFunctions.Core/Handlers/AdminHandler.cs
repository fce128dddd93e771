using System.Text.Json.Nodes;
using OrderFunctions.Core.Api;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Core.Risk;

namespace OrderFunctions.Core.Handlers;

/// <summary>Admin routes: reference data, prices, deposits, broker position snapshots and maintenance runs.</summary>
public sealed class AdminHandler(OrdersDatabase database, IEnumerable<IMaintenanceJob> jobs, RiskEngine risk)
{
    private static readonly string[] PositionSides = ["long", "short"];
    private readonly Dictionary<string, IMaintenanceJob> _jobs = jobs.ToDictionary(j => j.Name, StringComparer.Ordinal);

    public async Task<ApiResponse> UpsertInstrumentsAsync(ApiContext context)
    {
        var (instruments, error) = await RequestBody.ReadFieldsAsync(context.Request, fields =>
        {
            var items = new JsonArray();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var count = fields.Objects("instruments", required: true, maxItems: ApiLimits.MaxItems, f =>
            {
                var symbol = Instruments.ReadSymbol(f);
                if (symbol is not null && !seen.Add(symbol))
                {
                    f.Fail("symbol", "appears more than once");
                }

                var instrument = new JsonObject
                {
                    ["symbol"] = symbol,
                    ["description"] = f.String("description", required: false, maxLength: 200),
                    ["contract_size"] = f.Decimal("contract_size", true, ApiLimits.Positive),
                    ["margin_rate"] = f.Decimal("margin_rate", true, ApiLimits.MarginRate),
                    ["commission_rate"] = f.Decimal("commission_rate", false, ApiLimits.CommissionRate),
                    ["min_qty"] = f.Decimal("min_qty", true, ApiLimits.Positive),
                    ["qty_step"] = f.Decimal("qty_step", true, ApiLimits.Positive),
                    ["tick_size"] = f.Decimal("tick_size", true, ApiLimits.Positive),
                    ["last_price"] = f.Decimal("last_price", false, ApiLimits.Positive),
                    ["tradable"] = f.Boolean("tradable", required: false),
                };
                items.Add(instrument);
            });
            if (count == 0)
            {
                fields.Fail("instruments", "must not be empty");
            }

            return items;
        }, context.CancellationToken);
        if (error is not null)
        {
            return error;
        }

        var envelope = await database.CallAsync(DbRole.Maintenance, null, "SELECT trading.upsert_instruments(@Items::jsonb)",
            new { Items = instruments!.ToJsonString() }, Writes.Idempotently, context.CancellationToken);
        return await WithRiskAsync(envelope, context.CancellationToken);
    }

    /// <summary>
    /// A price feed's update of many last prices at once. Its transaction queues the stops it crossed and the
    /// holders' margin checks; the risk engine then closes what they call for before the answer goes back.
    /// </summary>
    public async Task<ApiResponse> SetPricesAsync(ApiContext context)
    {
        var (prices, error) = await RequestBody.ReadFieldsAsync(context.Request, fields =>
        {
            var items = new JsonArray();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var count = fields.Objects("prices", required: true, maxItems: ApiLimits.MaxItems, f =>
            {
                var symbol = Instruments.ReadSymbol(f);
                if (symbol is not null && !seen.Add(symbol))
                {
                    f.Fail("symbol", "appears more than once");
                }

                items.Add(new JsonObject { ["symbol"] = symbol, ["price"] = f.Decimal("price", true, ApiLimits.Positive) });
            });
            if (count == 0)
            {
                fields.Fail("prices", "must not be empty");
            }

            return items;
        }, context.CancellationToken);
        if (error is not null)
        {
            return error;
        }

        // Setting the same prices again is the same state.
        var envelope = await database.CallAsync(DbRole.Maintenance, null, "SELECT trading.set_prices(@Prices::jsonb)",
            new { Prices = prices!.ToJsonString() }, Writes.Idempotently, context.CancellationToken);
        return await WithRiskAsync(envelope, context.CancellationToken);
    }

    /// <summary>After a successful price change, the risk engine's work on it, reported under data.risk.</summary>
    private async Task<ApiResponse> WithRiskAsync(JsonObject envelope, CancellationToken cancellationToken)
    {
        if ((bool?)envelope["success"] == true)
        {
            envelope["data"]!["risk"] = (await risk.DrainAsync(RiskEngine.RequestBudget, cancellationToken)).ToJson();
        }

        return ApiResponse.FromEnvelope(envelope);
    }

    public async Task<ApiResponse> DepositAsync(ApiContext context)
    {
        if (!RouteIds.TryRead(context, "userId", out var userId, out var routeError))
        {
            return routeError;
        }

        var errors = new List<FieldError>();
        // Required: a deposit retried after a lost answer must not create money twice, and only the key tells a
        // repeat from a second deposit of the same amount.
        var key = Idempotency.ReadKey(context.Request, required: true, errors);
        var (deposit, error) = await RequestBody.ReadFieldsAsync(context.Request, fields => (
            Amount: fields.Decimal("amount", required: true, ApiLimits.Deposit),
            Reason: fields.String("reason", required: false, maxLength: 200) ?? "deposit"), context.CancellationToken, errors);
        if (error is not null)
        {
            return error;
        }

        // The database answers a repeat of the key from the stored response, so a call lost with its connection
        // is repeated safely.
        var envelope = await database.CallAsync(DbRole.Maintenance, userId,
            "SELECT trading.deposit(@Amount, @Reason, @Key, @Fingerprint)",
            new { deposit.Amount, deposit.Reason, Key = key, Fingerprint = Idempotency.Fingerprint("deposit-v1", deposit.Amount, deposit.Reason) },
            Writes.Idempotently, context.CancellationToken);
        return Idempotency.Respond(envelope, firstStatus: 201);
    }

    public async Task<ApiResponse> SyncPositionsAsync(ApiContext context)
    {
        var (snapshot, error) = await RequestBody.ReadFieldsAsync(context.Request, fields =>
        {
            var userId = fields.Uuid("user_id", required: true);
            var positions = new JsonArray();
            fields.Objects("positions", required: true, maxItems: ApiLimits.MaxItems, f => positions.Add(new JsonObject
            {
                ["symbol"] = Instruments.ReadSymbol(f),
                ["side"] = f.String("side", required: true, maxLength: 5, allowed: PositionSides),
                ["quantity"] = f.Decimal("quantity", true, ApiLimits.Positive),
                ["avg_entry_price"] = f.Decimal("avg_entry_price", true, ApiLimits.AveragePrice),
                ["stop_loss"] = f.Decimal("stop_loss", false, ApiLimits.Positive),
                ["take_profit"] = f.Decimal("take_profit", false, ApiLimits.Positive),
            }));
            // The broker's price of each symbol whose open position the snapshot drops or changes: the PnL of the
            // change is booked at it (the database says which symbols need one).
            var closingPrices = new JsonArray();
            fields.Objects("closing_prices", required: false, maxItems: ApiLimits.MaxItems, f => closingPrices.Add(new JsonObject
            {
                ["symbol"] = Instruments.ReadSymbol(f),
                ["price"] = f.Decimal("price", true, ApiLimits.Positive),
            }));
            return (UserId: userId, Positions: positions, ClosingPrices: closingPrices);
        }, context.CancellationToken);
        if (error is not null)
        {
            return error;
        }

        // Replacing positions with the same snapshot again yields the same state (the second time nothing changes).
        var envelope = await database.CallAsync(DbRole.Maintenance, snapshot.UserId,
            "SELECT trading.sync_positions(@Positions::jsonb, @ClosingPrices::jsonb)",
            new { Positions = snapshot.Positions.ToJsonString(), ClosingPrices = snapshot.ClosingPrices.ToJsonString() },
            Writes.Idempotently, context.CancellationToken);
        return ApiResponse.FromEnvelope(envelope);
    }

    public async Task<ApiResponse> RunMaintenanceAsync(ApiContext context)
    {
        var name = context.Request.RouteValue("job");
        if (name is null || !_jobs.TryGetValue(name, out var job))
        {
            return ApiResponse.Validation("job", $"must be one of {string.Join(", ", JobNames.All)}");
        }

        var run = await job.RunAsync("admin:" + context.RequiredCaller.UserId, context.CancellationToken);
        var data = Json.ToNode(run)!;
        return run.Status switch
        {
            JobRun.Succeeded => ApiResponse.Success(200, data),
            JobRun.Skipped => ApiResponse.Error(ErrorCodes.JobSkipped, "another instance is running this job now; its run is recorded as skipped", data),
            _ => ApiResponse.Error(ErrorCodes.InternalError, $"the {name} run failed: {run.Error}", data),
        };
    }
}
