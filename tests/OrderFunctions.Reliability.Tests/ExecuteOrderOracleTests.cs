using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using OrderFunctions.Reliability.Tests.Oracle;
using OrderFunctions.Reliability.Tests.Support;
using OrderFunctions.Testing;
using Xunit.Abstractions;

namespace OrderFunctions.Reliability.Tests;

/// <summary>
/// Model-based testing of the money rules: random sequences of orders (with stops), price moves (an instruments
/// upsert or a feed's price), stop changes, deposits, rollbacks and idempotent replays run against the stored
/// functions, with the risk engine's batches after every price, and against <see cref="TradingModel"/>: every
/// step's outcome, balances, margins, PnL, write-offs, positions, stops, the system's closes (stop-loss,
/// take-profit, liquidation) and order statuses must agree exactly. CsCheck shrinks a
/// failure within the iteration budget and prints its seed: replay it with CsCheck_Seed=..., and give the
/// shrinking more room with CsCheck_Iter=... (e.g. 2000).
/// </summary>
public sealed class ExecuteOrderOracleTests(DatabaseFixture database, ITestOutputHelper output) : IClassFixture<DatabaseFixture>
{
    // A fixed count, not a time budget: the same work on a fast or a busy machine.
    private static readonly long Iterations = long.TryParse(Environment.GetEnvironmentVariable("CsCheck_Iter"), out var iterations) ? iterations : 60;

    // Scenarios are independent (each has its own trader and instruments) and wait on round trips, not CPU.
    private static readonly int Threads = int.TryParse(Environment.GetEnvironmentVariable("ORACLE_THREADS"), out var threads) ? threads : 4;

    private readonly ConcurrentDictionary<string, int> _outcomes = new(StringComparer.Ordinal);

    [Fact]
    public async Task Every_step_of_random_trading_sequences_matches_the_oracle_and_leaves_the_ledgers_consistent()
    {
        await using var db = new TradingDatabase(database);

        await Scenarios.Any.SampleAsync(scenario => RunAsync(db, scenario), iter: Iterations, threads: Threads, print: scenario => scenario.ToString());

        output.WriteLine("outcomes: " + string.Join(", ", _outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key} {o.Value}")));
        // Each outcome shows up several times in 60 scenarios; a smaller budget (CsCheck_Iter) proves less. (A trader's own
        // close with a write-off needs a position back under water that the risk engine has not judged, i.e. after a
        // rollback: rare here, and counted when it happens; ReduceOnlyTests and RiskScenarioTests pin it down.)
        string[] outcomes =
        [
            "executed", "rolled_back", "replayed", "INSUFFICIENT_BALANCE", "INSUFFICIENT_MARGIN", "PRICE_NOT_MARKETABLE", "INSTRUMENT_NOT_TRADABLE",
            "VALIDATION_ERROR", "IDEMPOTENCY_KEY_REUSED", "ROLLBACK_CONFLICT", "INVALID_ORDER_STATE", "REDUCE_ONLY_REJECTED",
            "stop_loss", "take_profit", "liquidation", "written off by a system close", "stops changed", "POSITION_NOT_OPEN", "system close rolled back",
        ];
        foreach (var expected in Iterations >= 60 ? outcomes : [])
        {
            Assert.True(_outcomes.ContainsKey(expected), $"{Iterations} scenarios never produced {expected}: the generator lost coverage");
        }
    }

    private async Task RunAsync(TradingDatabase db, Scenario scenario)
    {
        var user = Guid.NewGuid();
        var tag = "OR" + Guid.NewGuid().ToString("N")[..10].ToUpperInvariant();
        var model = new TradingModel(Scenarios.StopOutLevel);
        var symbols = new string[scenario.Instruments.Length];
        var items = new JsonArray();
        for (var i = 0; i < symbols.Length; i++)
        {
            var plan = scenario.Instruments[i];
            symbols[i] = $"{tag}-{i}";
            model.AddInstrument(plan.Terms(symbols[i]), plan.Priced ? plan.InitialPrice : null);
            items.Add(InstrumentJson(model.Instrument(symbols[i]).Terms, plan.Priced ? plan.InitialPrice : null, tradable: true));
        }

        AssertSucceeded(await db.UpsertInstrumentsAsync(items.ToJsonString()), "arranging the instruments");
        AssertSucceeded(await db.DepositAsync(user, scenario.InitialDeposit), "the first deposit");
        model.Deposit(scenario.InitialDeposit);
        await AssertDatabaseMatchesAsync(db, user, model, "after the first deposit");

        var sent = new List<OrderRequest>();
        for (var i = 0; i < scenario.Steps.Length; i++)
        {
            var what = scenario.Steps[i] switch
            {
                PlaceOrder order => await PlaceOrderAsync(db, user, model, scenario, symbols, sent, order, $"{tag}-K{i}"),
                MovePrice move => await MovePriceAsync(db, user, model, scenario, symbols, move),
                Tick tick => await TickAsync(db, user, model, scenario, symbols, tick),
                Adverse adverse => await AdverseAsync(db, user, model, scenario, symbols, adverse),
                SetStops stops => await SetStopsAsync(db, user, model, stops),
                Deposit deposit => await DepositAsync(db, user, model, deposit),
                Rollback rollback => await RollbackAsync(db, user, model, rollback),
                Replay replay => await ReplayAsync(db, user, model, sent, replay),
                CloseLatest close => await CloseLatestAsync(db, user, model, sent, close, $"{tag}-K{i}"),
                var other => throw new InvalidOperationException($"unknown step {other}"),
            };
            await AssertDatabaseMatchesAsync(db, user, model, $"step {i} ({scenario.Steps[i]}): {what}");
        }

        var transactions = model.Orders
            .SelectMany(o => new[] { o.TransactionId, o.RollbackTransactionId })
            .OfType<Guid>()
            .Select(t => (user, t));
        await db.AssertConsistentAsync(transactions);
        await db.AssertMoneyConservedAsync(new Dictionary<Guid, decimal> { [user] = model.Deposited });
    }

    private async Task<string> PlaceOrderAsync(TradingDatabase db, Guid user, TradingModel model, Scenario scenario, string[] symbols,
        List<OrderRequest> sent, PlaceOrder step, string key)
    {
        var index = step.Instrument % symbols.Length;
        var instrument = model.Instrument(symbols[index]);
        var terms = instrument.Terms;
        var position = model.OpenPosition(terms.Symbol);
        var side = step.Buy ? "buy" : "sell";
        var quantity = step.Units * terms.QtyStep;
        switch (step.Sizing)
        {
            case Sizing.BelowMinimum:
                quantity = terms.MinQty > terms.QtyStep ? terms.MinQty - terms.QtyStep : terms.QtyStep / 2;
                break;
            case Sizing.OffStep:
                quantity += terms.QtyStep / 2;
                break;
            case Sizing.ClosePosition or Sizing.FlipPosition when position is not null:
                side = position.Side == "long" ? "sell" : "buy";
                quantity = step.Sizing == Sizing.ClosePosition ? position.Quantity : position.Quantity + quantity;
                break;
            case Sizing.MostOfTheMargin when instrument.LastPrice is { } last:
                var perUnit = last * terms.ContractSize * (terms.MarginRate + terms.CommissionRate);
                var affordable = Math.Floor(model.FreeMargin() * 0.9m / perUnit / terms.QtyStep) * terms.QtyStep;
                quantity = Math.Min(Math.Max(affordable, terms.MinQty), 1e9m);
                break;
        }

        decimal? limit = null;
        var reference = instrument.LastPrice ?? scenario.Instruments[index].InitialPrice;
        if (step.Limit)
        {
            limit = reference + step.LimitTicks * terms.TickSize + (step.OffTick ? terms.TickSize / 2 : 0);
        }

        // Stops on the loss and profit side of the price for the side the order opens (a buy's stop-loss below it).
        var direction = side == "buy" ? 1 : -1;
        var offTick = step.OffTickStop ? terms.TickSize / 2 : 0;
        var stopLoss = step.StopTicks is { } stopTicks ? Positive(reference - direction * stopTicks * terms.TickSize + offTick, terms.TickSize) : (decimal?)null;
        var takeProfit = step.ProfitTicks is { } profitTicks ? Positive(reference + direction * profitTicks * terms.TickSize, terms.TickSize) : (decimal?)null;
        var request = new OrderRequest(terms.Symbol, side, step.Limit ? "limit" : "market", quantity, limit, key, stopLoss, takeProfit, step.ReduceOnly);
        sent.Add(request);
        return await SendOrderAsync(db, user, model, request);
    }

    private async Task<string> CloseLatestAsync(TradingDatabase db, Guid user, TradingModel model, List<OrderRequest> sent, CloseLatest step, string key)
    {
        if (model.Orders.Count == 0 || model.OpenPosition(model.Orders[^1].Symbol) is not { } position)
        {
            return "nothing to close";
        }

        var request = new OrderRequest(position.Symbol, position.Side == "long" ? "sell" : "buy", "market", position.Quantity, null, key,
            ReduceOnly: step.ReduceOnly);
        sent.Add(request);
        return "close: " + await SendOrderAsync(db, user, model, request);
    }

    private async Task<string> ReplayAsync(TradingDatabase db, Guid user, TradingModel model, List<OrderRequest> sent, Replay step)
    {
        if (sent.Count == 0)
        {
            return "nothing to replay yet";
        }

        var original = sent[step.Pick % sent.Count];
        var request = step.SamePayload ? original : original with { Quantity = original.Quantity + model.Instrument(original.Symbol).Terms.QtyStep };
        return "replay: " + await SendOrderAsync(db, user, model, request);
    }

    private async Task<string> SendOrderAsync(TradingDatabase db, Guid user, TradingModel model, OrderRequest request)
    {
        var expected = model.PlaceOrder(request);
        var response = await db.ExecuteOrderAsync(user, request.Symbol, request.Side, request.Type, request.Quantity, request.LimitPrice,
            request.Key, request.Fingerprint, request.StopLoss, request.TakeProfit, request.ReduceOnly);
        var what = $"{request} -> predicted {expected.Outcome} ({expected.Handling})";
        AssertOutcome(expected.Outcome, response, what);
        Count(expected.Handling == Handling.Stored && expected.Outcome.Success ? "executed" : expected.Outcome.ErrorCode ?? "replayed");
        if (expected is { Handling: Handling.Stored, Execution.WriteOff: > 0 })
        {
            Count("written off by a trader's close");
        }

        switch (expected.Handling)
        {
            case Handling.Stored:
                var order = expected.Order!;
                order.DbId = response.Guid("order_id");
                order.TransactionId = response.Guid("transaction_id");
                Assert.False(response.Replayed, $"{what}: a new request was answered as a replay: {response}");
                if (expected.Execution is { } execution)
                {
                    AssertExecution(execution, response, what);
                }

                break;
            case Handling.Replayed:
                Assert.True(response.Replayed, $"{what}: expected a replay of the stored response: {response}");
                Assert.Equal(expected.Order!.DbId, response.MaybeGuid("order_id"));
                break;
            case Handling.KeyReused:
                Assert.Equal(expected.Order!.DbId, response.MaybeGuid("order_id"));
                break;
        }

        return what;
    }

    private static void AssertExecution(Execution execution, Envelope response, string what)
    {
        var differences = new List<string>();
        void Same(string path, decimal expected)
        {
            var actual = response.Decimal(path);
            if (actual != expected)
            {
                differences.Add(string.Create(CultureInfo.InvariantCulture, $"data.{path}: expected {expected}, got {actual}"));
            }
        }

        Same("executed_price", execution.Price);
        Same("commission", execution.Commission);
        Same("realized_pnl", execution.RealizedPnl);
        Same("write_off", execution.WriteOff);
        Same("margin_delta", execution.MarginDelta);
        Same("account.balance", execution.Balance);
        Same("account.used_margin", execution.UsedMargin);
        Same("position.quantity", execution.Position.Quantity);
        Same("position.avg_entry_price", execution.Position.AvgEntryPrice);
        Same("position.used_margin", execution.Position.UsedMargin);
        if (response.String("position.side") != execution.Position.Side || response.String("position.status") != execution.Position.Status)
        {
            differences.Add($"data.position: expected {execution.Position}, got {response.Find("position")}");
        }

        Assert.True(differences.Count == 0, $"{what}: the response differs from the oracle:\n  {string.Join("\n  ", differences)}\n{response}");

        var positionId = response.Guid("position.id");
        if (execution.Opened is { } opened)
        {
            opened.DbId = positionId;
        }
        else
        {
            Assert.True(execution.Position.DbId == positionId, $"{what}: the response names position {positionId}, the oracle {execution.Position}");
        }
    }

    private async Task<string> RollbackAsync(TradingDatabase db, Guid user, TradingModel model, Rollback step)
    {
        if (model.Orders.Count == 0)
        {
            return "nothing to roll back yet";
        }

        var order = model.Orders[model.Orders.Count - 1 - step.Pick % model.Orders.Count];
        var expected = model.Rollback(order);
        var response = await db.RollbackAsync(user, order.DbId!.Value, "oracle rollback");
        var what = $"rollback of {order} ({order.Status}) -> predicted {expected}";
        AssertOutcome(expected, response, what);
        Count(expected.Success ? "rolled_back" : expected.ErrorCode!);
        if (expected.Success && order.IsSystem)
        {
            Count("system close rolled back");
        }
        if (expected.Success)
        {
            order.RollbackTransactionId = response.Guid("transaction_id");
            Assert.Equal(model.Balance, response.Decimal("account.balance"));
            Assert.Equal(model.UsedMargin, response.Decimal("account.used_margin"));
        }

        return what;
    }

    private async Task<string> MovePriceAsync(TradingDatabase db, Guid user, TradingModel model, Scenario scenario, string[] symbols, MovePrice step)
    {
        var (instrument, price) = Moved(model, scenario, symbols, step.Instrument, step.BasisPoints);
        var items = new JsonArray { InstrumentJson(instrument.Terms, price, step.Tradable) };
        AssertSucceeded(await db.UpsertInstrumentsAsync(items.ToJsonString()), $"moving {instrument.Terms.Symbol} to {price}");
        model.SetPrice(instrument.Terms.Symbol, price, step.Tradable);
        var what = string.Create(CultureInfo.InvariantCulture, $"{instrument.Terms.Symbol} at {Money.Text(price)}{(step.Tradable ? "" : ", not tradable")}");
        return what + await RiskEngineAsync(db, user, model, scenario, symbols, instrument.Terms.Symbol, what);
    }

    private async Task<string> TickAsync(TradingDatabase db, Guid user, TradingModel model, Scenario scenario, string[] symbols, Tick step)
    {
        var (instrument, price) = Moved(model, scenario, symbols, step.Instrument, step.BasisPoints);
        AssertSucceeded(await db.SetPriceAsync(instrument.Terms.Symbol, price), $"a feed's price {price} for {instrument.Terms.Symbol}");
        model.SetPrice(instrument.Terms.Symbol, price, instrument.Tradable);
        var what = string.Create(CultureInfo.InvariantCulture, $"feed: {instrument.Terms.Symbol} at {Money.Text(price)}");
        return what + await RiskEngineAsync(db, user, model, scenario, symbols, instrument.Terms.Symbol, what);
    }

    private async Task<string> AdverseAsync(TradingDatabase db, Guid user, TradingModel model, Scenario scenario, string[] symbols, Adverse step)
    {
        if (model.Positions.LastOrDefault(p => p.Status == "open") is not { } position)
        {
            return "no open position to move against";
        }

        var index = Array.IndexOf(symbols, position.Symbol);
        return await TickAsync(db, user, model, scenario, symbols, new Tick(index, position.Side == "long" ? -step.BasisPoints : step.BasisPoints));
    }

    /// <summary>The instrument and its price moved by basis points, to the nearest tick, never below one tick.</summary>
    private static (ModelInstrument Instrument, decimal Price) Moved(TradingModel model, Scenario scenario, string[] symbols, int pick, int basisPoints)
    {
        var index = pick % symbols.Length;
        var instrument = model.Instrument(symbols[index]);
        var tick = instrument.Terms.TickSize;
        var ticks = (instrument.LastPrice ?? scenario.Instruments[index].InitialPrice) / tick;
        return (instrument, Math.Max(1, Math.Round(ticks * (10_000 + basisPoints) / 10_000, MidpointRounding.AwayFromZero)) * tick);
    }

    /// <summary>
    /// After a price: the risk engine's batches run (as the price routes run them), and the closes they made must be
    /// exactly the model's, in order, with the same money.
    /// </summary>
    private async Task<string> RiskEngineAsync(TradingDatabase db, Guid user, TradingModel model, Scenario scenario, string[] symbols, string symbol,
        string what)
    {
        var predicted = model.OnPriceMoved(symbol);
        await db.DrainAsync(Scenarios.StopOutLevel, scenario.BatchLimit, symbols);
        var known = model.Orders.Where(o => o.IsSystem && o.DbId is not null).Select(o => o.DbId!.Value).ToHashSet();
        var made = (await db.SystemOrdersAsync(user)).Where(o => !known.Contains(o.Id)).ToList();
        var describe = string.Join("; ", predicted.Select(o => o.ToString()));
        Assert.True(predicted.Count == made.Count,
            $"{what}: the model closes {predicted.Count} position(s) ({describe}), the risk engine {made.Count} ({string.Join("; ", made)})");
        for (var i = 0; i < made.Count; i++)
        {
            var (expected, actual) = (predicted[i], made[i]);
            var close = new SystemOrderRow(actual.Id, actual.TransactionId, expected.Type, expected.Position!.DbId!.Value, expected.Price!.Value, expected.Commission,
                expected.RealizedPnl, expected.WriteOff, expected.BalanceDelta, expected.MarginDelta);
            Assert.True(close == actual, $"{what}: close {i + 1}: the model predicts {close}, the risk engine made {actual}");
            expected.DbId = actual.Id;
            expected.TransactionId = actual.TransactionId;
            Count(expected.Type);
            if (expected.WriteOff > 0)
            {
                Count("written off by a system close");
            }
        }

        return predicted.Count == 0 ? "" : $" -> {describe}";
    }

    private async Task<string> SetStopsAsync(TradingDatabase db, Guid user, TradingModel model, SetStops step)
    {
        if (model.Positions.Count == 0)
        {
            return "no position to set stops on yet";
        }

        var position = model.Positions[step.Pick % model.Positions.Count];
        var instrument = model.Instrument(position.Symbol);
        var tick = instrument.Terms.TickSize;
        var price = instrument.LastPrice!.Value;
        var direction = position.Side == "long" ? 1 : -1;
        var stopLoss = step.StopTicks is { } stopTicks ? Positive(price - direction * stopTicks * tick, tick) : (decimal?)null;
        var takeProfit = step.ProfitTicks is { } profitTicks ? Positive(price + direction * profitTicks * tick, tick) : (decimal?)null;
        var expected = model.SetStops(position, step.SetStop, stopLoss, step.SetProfit, takeProfit);
        var response = await db.SetStopsAsync(user, position.DbId!.Value, step.SetStop, stopLoss, step.SetProfit, takeProfit);
        var what = string.Create(CultureInfo.InvariantCulture,
            $"stops of {position}: {(step.SetStop ? $"sl {Money.Text(stopLoss)} " : "")}{(step.SetProfit ? $"tp {Money.Text(takeProfit)}" : "")} -> predicted {expected}");
        AssertOutcome(expected, response, what);
        Count(expected.Success ? "stops changed" : expected.ErrorCode!);
        return what;
    }

    /// <summary>A price of at least one tick.</summary>
    private static decimal Positive(decimal price, decimal tick) => Math.Max(price, tick);

    private static async Task<string> DepositAsync(TradingDatabase db, Guid user, TradingModel model, Deposit step)
    {
        var amount = step.Cents / 100m;
        AssertSucceeded(await db.DepositAsync(user, amount), $"depositing {amount}");
        model.Deposit(amount);
        return string.Create(CultureInfo.InvariantCulture, $"deposited {amount}");
    }

    private static async Task AssertDatabaseMatchesAsync(TradingDatabase db, Guid user, TradingModel model, string context)
    {
        var state = await db.StateAsync(user);
        var differences = new List<string>();
        void Same<T>(string what, T expected, T actual)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                differences.Add(string.Create(CultureInfo.InvariantCulture, $"{what}: oracle {expected}, database {actual}"));
            }
        }

        Same("account", new AccountRow(model.Balance, model.UsedMargin, model.RealizedPnl, model.WrittenOff), state.Account);
        Same("number of positions", model.Positions.Count, state.Positions.Count);
        foreach (var position in model.Positions)
        {
            if (position.DbId is not { } id || !state.Positions.TryGetValue(id, out var row))
            {
                differences.Add($"position {position} is not in the database");
                continue;
            }

            Same($"position {position}",
                new PositionRow(id, position.Symbol, position.Side, position.Status, position.Quantity, position.AvgEntryPrice, position.UsedMargin,
                    position.CommissionPaid, position.RealizedPnl, position.Version, position.StopLoss, position.TakeProfit),
                row);
        }

        Same("number of orders", model.Orders.Count, state.Orders.Count);
        foreach (var order in model.Orders)
        {
            Same($"status of order {order}", order.Status, order.DbId is { } id && state.Orders.TryGetValue(id, out var row) ? row.Status : "missing");
        }

        if (differences.Count > 0)
        {
            var text = new StringBuilder($"{context}\nthe database differs from the oracle:");
            foreach (var difference in differences)
            {
                text.Append("\n  ").Append(difference);
            }

            Assert.Fail(text.ToString());
        }
    }

    private static JsonObject InstrumentJson(InstrumentTerms terms, decimal? lastPrice, bool tradable) => new()
    {
        ["symbol"] = terms.Symbol,
        ["contract_size"] = terms.ContractSize,
        ["margin_rate"] = terms.MarginRate,
        ["commission_rate"] = terms.CommissionRate,
        ["min_qty"] = terms.MinQty,
        ["qty_step"] = terms.QtyStep,
        ["tick_size"] = terms.TickSize,
        ["last_price"] = lastPrice,
        ["tradable"] = tradable,
    };

    private static void AssertOutcome(Outcome expected, Envelope actual, string what) =>
        Assert.True(expected == new Outcome(actual.Success, actual.ErrorCode, actual.Status), $"{what}: the database answered {actual}");

    private static void AssertSucceeded(Envelope response, string what) =>
        Assert.True(response.Success, $"{what} failed: {response}");

    private void Count(string outcome) => _outcomes.AddOrUpdate(outcome, 1, (_, n) => n + 1);
}
