using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Core.Handlers;

namespace OrderFunctions.Api.Tests;

/// <summary>A funded trader with a fixed id, so the table of bad requests can name it.</summary>
public sealed class BadInputFixture : ApiFixture
{
    public static readonly Guid Trader = Guid.Parse("bad1bad1-0000-4000-8000-000000000001");

    protected override async Task SeedAsync()
    {
        var result = await SendAsync(HttpMethod.Post, $"/api/admin/accounts/{Trader}/deposits", AdminToken, new { amount = 1_000_000m },
            new Dictionary<string, string> { ["Idempotency-Key"] = "bad-input-seed" });
        result.AssertSuccess(201);
        await ExecutedOrderAsync(TokenFor(Trader), TestInstruments.EurUsd.Symbol, "buy", 0.01m);
    }
}

/// <summary>
/// Bad input on every route: each request gets its status, error code and the offending field in
/// data.errors[].field, as a problem document, and the database is left exactly as it was.
/// </summary>
public sealed class BadInputTests(BadInputFixture api) : IClassFixture<BadInputFixture>
{
    private const string Json = "application/json";
    private const string Fresh = "fresh";
    private const string Validation = "VALIDATION_ERROR";
    private const string ValidOrder = """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01}""";

    private static readonly Guid SomeId = Guid.Parse("4f0c8a52-6b1f-4c55-9a53-0d7c1e8f2a11");
    private static readonly Cursor SomeCursor = new(new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), SomeId);

    private static readonly IReadOnlyList<BadRequest> Cases =
    [
        // POST /api/orders: the body.
        Order("malformed JSON", """{"symbol":"EURUSD","side":""", "body"),
        Order("a JSON array instead of an object", """[{"symbol":"EURUSD"}]""", "body"),
        Order("an empty body", "", "body"),
        Order("JSON nested deeper than 32 levels", "{\"a\":" + new string('[', 40) + new string(']', 40) + "}", "body"),
        Order("a member given twice", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":-1,"quantity":0.01}""", "body"),
        Order("symbol as a number", """{"symbol":5,"side":"buy","type":"market","quantity":0.01}""", "symbol"),
        Order("quantity as a boolean", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":true}""", "quantity"),
        Order("quantity as an object", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":{"value":1}}""", "quantity"),
        Order("quantity as a word", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":"ten"}""", "quantity"),
        Order("quantity null", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":null}""", "quantity"),
        Order("an unknown side", """{"symbol":"EURUSD","side":"hold","type":"market","quantity":0.01}""", "side"),
        Order("an unknown type", """{"symbol":"EURUSD","side":"buy","type":"stop","quantity":0.01}""", "type"),
        Order("an unknown field", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"leverage":100}""", "leverage"),
        Order("a zero quantity", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0}""", "quantity"),
        Order("a negative quantity", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":-0.01}""", "quantity"),
        Order("a quantity off the instrument's step (judged by the database)", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.015}""", "quantity"),
        Order("a quantity below the instrument's minimum (judged by the database)", """{"symbol":"BTC-USD","side":"buy","type":"market","quantity":0.0005}""", "quantity"),
        Order("a notional beyond 1e15 (judged by the database)", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":99999999999}""", "quantity"),
        Order("a quantity with nine decimals", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.123456789}""", "quantity"),
        Order("a quantity of 1e30", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":1e30}""", "quantity"),
        Order("a quantity of 1e12", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":1e12}""", "quantity"),
        Order("a limit order without limit_price", """{"symbol":"EURUSD","side":"buy","type":"limit","quantity":0.01}""", "limit_price"),
        Order("a market order with limit_price", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"limit_price":1.1}""", "limit_price"),
        Order("a limit_price off the tick (judged by the database)", """{"symbol":"EURUSD","side":"buy","type":"limit","quantity":0.01,"limit_price":1.085005}""", "limit_price"),
        Order("a negative limit_price", """{"symbol":"EURUSD","side":"buy","type":"limit","quantity":0.01,"limit_price":-1}""", "limit_price"),
        Order("a zero stop_loss", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"stop_loss":0}""", "stop_loss"),
        Order("a take_profit of 1e12", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"take_profit":1000000000000}""", "take_profit"),
        Order("a strategy_id that is not a UUID", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"strategy_id":"momentum"}""", "strategy_id"),
        Order("a strategy_id of no strategy (judged by the database)", $$"""{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"strategy_id":"{{SomeId}}"}""", "strategy_id"),
        Order("a quantity with 31 decimals, which decimal would round to 0.01", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.0100000000000000000000000000009}""", "quantity"),
        Order("a quantity string with 31 decimals", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":"0.0100000000000000000000000000009"}""", "quantity"),
        Order("a quantity of 1E-9 in exponent form", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":1E-9}""", "quantity"),
        Order("a quantity with 5000 digits", $$"""{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.{{new string('1', 5000)}}}""", "quantity"),
        Order("a quantity string followed by a NUL", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":"0.01\u0000"}""", "quantity"),
        Order("a quantity string followed by a letter", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":"0.01x"}""", "quantity"),
        Order("a quantity string with two exponents", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":"1e2e3"}""", "quantity"),
        Order("a quantity string in hex", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":"0x10"}""", "quantity"),
        Order("a limit_price with 31 decimals", """{"symbol":"EURUSD","side":"buy","type":"limit","quantity":0.01,"limit_price":0.1000000000000000000000000000001}""", "limit_price"),
        Order("a stop_loss with 31 decimals", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"stop_loss":0.1000000000000000000000000000001}""", "stop_loss"),
        Order("a take_profit with 31 decimals", """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01,"take_profit":0.1000000000000000000000000000001}""", "take_profit"),
        Order("two Idempotency-Keys joined by a comma", ValidOrder, "Idempotency-Key", key: "a,b"),
        Order("a lowercase symbol", """{"symbol":"eurusd","side":"buy","type":"market","quantity":0.01}""", "symbol"),
        Order("no symbol", """{"side":"buy","type":"market","quantity":0.01}""", "symbol"),
        Order("no Idempotency-Key", ValidOrder, "Idempotency-Key", key: null),
        Order("an Idempotency-Key of 256 characters", ValidOrder, "Idempotency-Key", key: new string('k', 256)),
        Order("a body over 64 KiB", ValidOrder[..^1] + ",\"padding\":\"" + new string('x', 70_000) + "\"}", "body", 413, "PAYLOAD_TOO_LARGE"),
        Order("a text/plain body", ValidOrder, "Content-Type", 415, "UNSUPPORTED_MEDIA_TYPE", "text/plain"),
        Order("a form-encoded body", "symbol=EURUSD&side=buy", "Content-Type", 415, "UNSUPPORTED_MEDIA_TYPE", "application/x-www-form-urlencoded"),

        // GET /api/orders/{id} and GET /api/orders.
        Get("order: an id that is not a UUID", "/api/orders/12345", "id"),
        Get("order: a UUID without dashes", $"/api/orders/{SomeId:N}", "id"),
        Get("orders: an unknown status", "/api/orders?status=open", "status"),
        Get("orders: status given twice", "/api/orders?status=executed&status=failed", "status"),
        Get("orders: limit 0", "/api/orders?limit=0", "limit"),
        Get("orders: limit 501", "/api/orders?limit=501", "limit"),
        Get("orders: limit as a word", "/api/orders?limit=ten", "limit"),
        Get("orders: a negative limit", "/api/orders?limit=-1", "limit"),
        Get("orders: a cursor that is not one", "/api/orders?cursor=not-a-cursor", "cursor"),
        Get("orders: a cursor of 200 characters", "/api/orders?cursor=" + new string('A', 200), "cursor"),
        Get("orders: a cursor of the positions listing", "/api/orders?cursor=" + SomeCursor.Encode("positions"), "cursor"),
        Get("orders: from without a time zone", "/api/orders?from=2026-01-01T00:00:00", "from"),
        Get("orders: from as a word", "/api/orders?from=yesterday", "from"),
        Get("orders: to in month 13", "/api/orders?to=2026-13-01T00:00:00Z", "to"),
        Get("orders: an unknown query parameter", "/api/orders?colour=red", "colour"),
        Get("orders: a symbol of 33 characters", "/api/orders?symbol=" + new string('A', 33), "symbol"),
        Get("orders: a NUL as the symbol", "/api/orders?symbol=%00", "symbol"),
        Get("orders: a NUL inside the symbol", "/api/orders?symbol=EUR%00USD", "symbol"),
        Get("orders: a control character in the status", "/api/orders?status=executed%01", "status"),
        Get("orders: a NUL after the limit", "/api/orders?limit=5%00", "limit"),
        Get("orders: a NUL after from", "/api/orders?from=2026-01-01T00:00:00Z%00", "from"),

        // GET /api/positions, /api/trades, /api/transactions/{id}/integrity, /api/accounts/me.
        Get("positions: an unknown status", "/api/positions?status=pending", "status"),
        Get("positions: limit 1000", "/api/positions?limit=1000", "limit"),
        Get("positions: a NUL as the symbol", "/api/positions?symbol=%00", "symbol"),
        Get("positions: a NUL inside the symbol", "/api/positions?symbol=EUR%00USD", "symbol"),
        Get("trades: a NUL as the symbol", "/api/trades?symbol=%00", "symbol"),
        Get("trades: a line feed inside the symbol", "/api/trades?symbol=EUR%0AUSD", "symbol"),
        Get("positions: a cursor of the trades listing", "/api/positions?cursor=" + SomeCursor.Encode("trades"), "cursor"),
        Get("trades: a strategy_id that is not a UUID", "/api/trades?strategy_id=momentum", "strategy_id"),
        Get("trades: an unknown pnl", "/api/trades?pnl=even", "pnl"),
        Get("trades: a cursor of the orders listing", "/api/trades?cursor=" + SomeCursor.Encode("orders"), "cursor"),
        Get("trades: to as a date without a time", "/api/trades?to=2026-01-01", "to"),
        Get("integrity: an id that is not a UUID", "/api/transactions/tx-1/integrity", "id"),
        Get("account: a user_id in the query", $"/api/accounts/me?user_id={SomeId}", "user_id"),

        // POST /api/strategies.
        Post("strategy: no name", "/api/strategies", "{}", "name"),
        Post("strategy: a name of 101 characters", "/api/strategies", $$"""{"name":"{{new string('n', 101)}}"}""", "name"),
        Post("strategy: a name that is a number", "/api/strategies", """{"name":42}""", "name"),
        Post("strategy: a blank name", "/api/strategies", """{"name":"   "}""", "name"),

        // PUT /api/admin/instruments.
        Admin("instruments: an empty list", "PUT", "/api/admin/instruments", """{"instruments":[]}""", "instruments"),
        Admin("instruments: an object instead of a list", "PUT", "/api/admin/instruments", """{"instruments":{}}""", "instruments"),
        Admin("instruments: a string item", "PUT", "/api/admin/instruments", """{"instruments":["EURUSD"]}""", "instruments[0]"),
        Admin("instruments: margin_rate above 1", "PUT", "/api/admin/instruments", Instrument("\"margin_rate\":1.5"), "instruments[0].margin_rate"),
        Admin("instruments: margin_rate just above 1", "PUT", "/api/admin/instruments", Instrument("\"margin_rate\":1.00000001"), "instruments[0].margin_rate"),
        Admin("instruments: margin_rate 0", "PUT", "/api/admin/instruments", Instrument("\"margin_rate\":0"), "instruments[0].margin_rate"),
        Admin("instruments: commission_rate 1", "PUT", "/api/admin/instruments", Instrument("\"commission_rate\":1"), "instruments[0].commission_rate"),
        Admin("instruments: a contract_size of -1e13", "PUT", "/api/admin/instruments", Instrument("\"contract_size\":-10000000000000"), "instruments[0].contract_size"),
        Admin("instruments: a lowercase symbol", "PUT", "/api/admin/instruments", Instrument("\"symbol\":\"new-one\""), "instruments[0].symbol"),
        Admin("instruments: a symbol twice", "PUT", "/api/admin/instruments",
            """{"instruments":[{"symbol":"DUP","contract_size":1,"margin_rate":0.1,"min_qty":1,"qty_step":1,"tick_size":0.01},{"symbol":"DUP","contract_size":1,"margin_rate":0.1,"min_qty":1,"qty_step":1,"tick_size":0.01}]}""",
            "instruments[1].symbol"),
        Admin("instruments: no contract_size", "PUT", "/api/admin/instruments", Instrument("\"contract_size\":null"), "instruments[0].contract_size"),
        Admin("instruments: a negative commission_rate", "PUT", "/api/admin/instruments", Instrument("\"commission_rate\":-0.001"), "instruments[0].commission_rate"),
        Admin("instruments: a tick_size with nine decimals", "PUT", "/api/admin/instruments", Instrument("\"tick_size\":0.000000001"), "instruments[0].tick_size"),
        Admin("instruments: a last_price with 31 decimals", "PUT", "/api/admin/instruments", Instrument("\"last_price\":0.1000000000000000000000000000001"), "instruments[0].last_price"),
        Admin("instruments: a min_qty string followed by a NUL", "PUT", "/api/admin/instruments", Instrument("\"min_qty\":\"1\\u0000\""), "instruments[0].min_qty"),
        Admin("instruments: an unknown field", "PUT", "/api/admin/instruments", Instrument("\"colour\":\"red\""), "instruments[0].colour"),
        Admin("instruments: an XML body", "PUT", "/api/admin/instruments", "<instruments/>", "Content-Type", 415, "UNSUPPORTED_MEDIA_TYPE", "application/xml"),

        // POST /api/admin/accounts/{userId}/deposits.
        Admin("deposit: a zero amount", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":0}""", "amount"),
        Admin("deposit: a negative amount", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":-5}""", "amount"),
        Admin("deposit: an amount of 1e30", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":1e30}""", "amount"),
        Admin("deposit: an amount of 1e15", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":1e15}""", "amount"),
        Admin("deposit: an amount with nine decimals", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":1.000000001}""", "amount"),
        Admin("deposit: an amount as a word", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":"lots"}""", "amount"),
        Admin("deposit: an amount with 31 decimals", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":0.1000000000000000000000000000001}""", "amount"),
        Admin("deposit: an amount string followed by a NUL", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":"10\u0000"}""", "amount"),
        Admin("deposit: no Idempotency-Key", "POST", $"/api/admin/accounts/{SomeId}/deposits", """{"amount":10}""", "Idempotency-Key"),
        Admin("deposit: a user id that is not a UUID", "POST", "/api/admin/accounts/alice/deposits", """{"amount":1}""", "userId"),
        Admin("deposit: a body over 64 KiB", "POST", $"/api/admin/accounts/{SomeId}/deposits",
            "{\"amount\":1,\"reason\":\"" + new string('r', 66_000) + "\"}", "body", 413, "PAYLOAD_TOO_LARGE"),

        // POST /api/admin/positions/sync.
        Admin("sync: a user_id that is not a UUID", "POST", "/api/admin/positions/sync", """{"user_id":"alice","positions":[]}""", "user_id"),
        Admin("sync: no positions", "POST", "/api/admin/positions/sync", $$"""{"user_id":"{{BadInputFixture.Trader}}"}""", "positions"),
        Admin("sync: an unknown side", "POST", "/api/admin/positions/sync", Sync("""{"symbol":"EURUSD","side":"flat","quantity":1,"avg_entry_price":1.1}"""), "positions[0].side"),
        Admin("sync: a zero quantity", "POST", "/api/admin/positions/sync", Sync("""{"symbol":"EURUSD","side":"long","quantity":0,"avg_entry_price":1.1}"""), "positions[0].quantity"),
        Admin("sync: a quantity with 31 decimals", "POST", "/api/admin/positions/sync",
            Sync("""{"symbol":"EURUSD","side":"long","quantity":0.0100000000000000000000000000009,"avg_entry_price":1.1}"""), "positions[0].quantity"),
        Admin("sync: an avg_entry_price with 13 decimals", "POST", "/api/admin/positions/sync",
            Sync("""{"symbol":"EURUSD","side":"long","quantity":1,"avg_entry_price":1.1000000000001}"""), "positions[0].avg_entry_price"),
        Admin("sync: an unknown instrument (judged by the database)", "POST", "/api/admin/positions/sync",
            Sync("""{"symbol":"NOSUCH","side":"long","quantity":1,"avg_entry_price":1.1}"""), "positions[0].symbol"),

        // POST /api/orders/{id}/rollback and /api/admin/maintenance/{job}.
        Admin("rollback: no reason", "POST", $"/api/orders/{SomeId}/rollback", "{}", "reason"),
        Admin("rollback: a reason that is a number", "POST", $"/api/orders/{SomeId}/rollback", """{"reason":7}""", "reason"),
        Admin("rollback: an id that is not a UUID", "POST", "/api/orders/last/rollback", """{"reason":"x"}""", "id"),
        Admin("maintenance: an unknown job", "POST", "/api/admin/maintenance/vacuum-everything", null, "job"),
    ];

    public static TheoryData<string> CaseNames => new(Cases.Select(c => c.Name));

    [Fact]
    public void Table_covers_every_route_with_at_least_forty_cases()
    {
        Assert.True(Cases.Count >= 40, $"{Cases.Count} cases");
        Assert.Equal(Cases.Count, Cases.Select(c => c.Name).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task Bad_request_names_its_field_in_a_problem_and_changes_nothing(string name)
    {
        var bad = Cases.Single(c => c.Name == name);
        var token = bad.AsAdmin ? api.AdminToken : ApiFixture.TokenFor(BadInputFixture.Trader);
        var headers = new Dictionary<string, string>();
        if (bad.IdempotencyKey is { } key)
        {
            headers["Idempotency-Key"] = key == Fresh ? Guid.NewGuid().ToString() : key;
        }

        var before = await DatabaseState.CaptureAsync(api);

        var result = await api.SendRawAsync(new HttpMethod(bad.Method), bad.Path, token, bad.Body, bad.ContentType, headers);

        result.AssertFieldError(bad.Status, bad.ErrorCode, bad.Field);
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(0)]
    public async Task Chunked_body_is_411_LENGTH_REQUIRED_on_both_hosts_because_the_Functions_host_would_drop_it(int padding)
    {
        // The Functions host forwards a body only with a Content-Length (a chunked one reaches the app empty), so both
        // hosts refuse a chunked body by name, whatever its size, instead of reading it as missing or executing it.
        var before = await DatabaseState.CaptureAsync(api);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/orders");
        request.Headers.Authorization = new("Bearer", ApiFixture.TokenFor(BadInputFixture.Trader));
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        var bytes = System.Text.Encoding.UTF8.GetBytes(padding == 0 ? ValidOrder : ValidOrder[..^1] + ",\"padding\":\"" + new string('x', padding) + "\"}");
        request.Content = new StreamContent(new UnknownLengthStream(bytes));
        request.Content.Headers.ContentType = new(Json);
        request.Headers.TransferEncodingChunked = true;
        using var client = api.CreateClient();

        using var response = await client.SendAsync(request);
        var result = await ApiResult.ReadAsync(response);

        result.AssertFieldError(411, "LENGTH_REQUIRED", "Content-Length");
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(api));
    }

    private static BadRequest Order(string what, string body, string field, int status = 400, string code = Validation,
        string contentType = Json, string? key = Fresh) =>
        new("order: " + what, false, "POST", "/api/orders", body, contentType, key, status, code, field);

    private static BadRequest Get(string name, string path, string field) =>
        new(name, false, "GET", path, null, null, null, 400, Validation, field);

    private static BadRequest Post(string name, string path, string body, string field) =>
        new(name, false, "POST", path, body, Json, null, 400, Validation, field);

    private static BadRequest Admin(string name, string method, string path, string? body, string field, int status = 400,
        string code = Validation, string contentType = Json) =>
        new(name, true, method, path, body, contentType, null, status, code, field);

    /// <summary>A valid instrument upsert with one member replaced or added.</summary>
    private static string Instrument(string member)
    {
        var fields = new Dictionary<string, string>
        {
            ["symbol"] = "\"NEW-ONE\"", ["contract_size"] = "1", ["margin_rate"] = "0.1", ["commission_rate"] = "0",
            ["min_qty"] = "1", ["qty_step"] = "1", ["tick_size"] = "0.01",
        };
        var separator = member.IndexOf(':', StringComparison.Ordinal);
        fields[member[..separator].Trim('"')] = member[(separator + 1)..];
        return "{\"instruments\":[{" + string.Join(",", fields.Select(f => $"\"{f.Key}\":{f.Value}")) + "}]}";
    }

    private static string Sync(string position) => $$"""{"user_id":"{{BadInputFixture.Trader}}","positions":[{{position}}]}""";

    private sealed record BadRequest(string Name, bool AsAdmin, string Method, string Path, string? Body, string? ContentType,
        string? IdempotencyKey, int Status, string ErrorCode, string Field);

    /// <summary>A body stream that cannot tell its length, so the request goes chunked.</summary>
    private sealed class UnknownLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
