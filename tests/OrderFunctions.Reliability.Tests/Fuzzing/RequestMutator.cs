using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace OrderFunctions.Reliability.Tests.Fuzzing;

/// <summary>What the templates refer to: arranged rows and tokens of every kind the API may be shown.</summary>
public sealed record FuzzContext(
    string SymbolA,
    string SymbolB,
    Guid Trader,
    Guid TraderWithoutAccount,
    Guid OrderId,
    Guid TransactionId,
    Guid PositionId,
    string TraderToken,
    string AdminToken,
    IReadOnlyList<string> BadTokens);

/// <summary>
/// Valid requests for every route (the templates), and mutations of their JSON, bytes, headers, methods, paths
/// and query strings. Everything is drawn from one seeded <see cref="Random"/>, so a seed reproduces a run.
/// </summary>
public sealed class RequestMutator(FuzzContext context, Random random)
{
    /// <summary>How many request templates there are: one or more for every route.</summary>
    public const int Templates = 17;

    private const string RawMarker = "@@raw:";

    // Values that replace a JSON value verbatim (some are not valid JSON on purpose).
    private static readonly string[] RawValues =
    [
        "null", "true", "false", "0", "-0", "-1", "1e400", "-1e400", "1E-9", "0.000000001", "1e2", "1.5e3", "123456789012345678901234567890",
        "79228162514264337593543950336", "1e15", "999999999999.99999999", "0.1234567890123", "NaN", "Infinity", "-Infinity", "01", "0x10", "+1", ".5", "5.",
        "\"\"", "\" \"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udfff\\ud800\"", "\"😀🚀\"", "\"ＡＢＣ\"", "\"١٢٣\"", "\"1,5\"", "\"1e3\"", "\"  1  \"", "\"-\"",
        "\"'; DROP TABLE trading.orders; --\"", "\"%s%n{0}\"", "\"\\\"\"", "\"\\\\\"", "[]", "{}", "[[[]]]", "{\"a\":{\"b\":{}}}", "[1,2,3]", "\"buy\"", "\"limit\"",
        "\"BUY\"", "\"market \"", "\"00000000-0000-0000-0000-000000000000\"", "1", "100", "2500", "0.01",
        "0.0100000000000000000000000000009", "\"0.0100000000000000000000000000009\"", "1E-30", "\"0.01\\u0000\"", "\"0.01x\"",
    ];

    // Numbers that must be refused wherever a decimal is read: more decimals than any field allows (whatever their
    // length, even where decimal would round them back into range), and numeric strings with anything extra.
    private static readonly string[] OverPreciseOrNotQuiteNumbers =
    [
        "0.0100000000000000000000000000009", "0.1000000000000000000000000000001", "1.0000000000001", "1E-13", "100.00000000000000000000000000001",
        "\"0.0100000000000000000000000000009\"", "\"0.01\\u0000\"", "\"1\\u0000\"", "\"0.01x\"", "\"1.5 \"", "\" 1.5\"", "\"1e2e3\"", "\"0x10\"",
        "\"1_000\"", "\"1,5\"", "\"١٢٣\"", "\"1.5\\n\"",
    ];

    private static readonly string[] DecimalFields =
        ["quantity", "limit_price", "stop_loss", "take_profit", "amount", "contract_size", "margin_rate", "commission_rate", "min_qty", "qty_step",
         "tick_size", "last_price", "avg_entry_price", "price"];

    private static readonly string[] ControlCharacters = ["%00", "%01", "%09", "%0A", "%0D", "%1F", "%7F"];

    private static readonly string[] Framings =
        ["a chunk size that is not hex", "a chunk size beyond any length", "a body sent without chunks", "a chunk longer than its size", "a chunk without its CRLF"];

    private static readonly string[] ContentTypes =
    [
        "text/plain", "application/xml", "application/json; charset=latin1", "application/problem+json", "application/vnd.api+json", "garbage", "",
        ";;;", "application/json;;charset", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "APPLICATION/JSON", "application/json",
        "application/+json", "json", "*/*",
    ];

    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

    private static readonly string[] Segments =
    [
        // No %00: TestHost's client refuses it before the app (Kestrel answers it with its own 400).
        "not-a-uuid", "00000000-0000-0000-0000-000000000000", "..", "%2e%2e", "%ZZ", "é", "%F0%9F%98%80", "{id}", "null", "-1",
        "{00000000-0000-0000-0000-000000000000}", "orphan-scan", "nope", "",
    ];

    private static readonly string[] QueryNames = ["status", "symbol", "from", "to", "limit", "cursor", "pnl", "strategy_id", "unknown", "Limit", ""];

    private static readonly string[] QueryValues =
    [
        "-1", "0", "1", "500", "501", "abc", "99999999999999", "executed", "open", "closed", "profit", "loss", "maybe", "2020-01-01T00:00:00Z",
        "2020-01-01", "yesterday", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "b3JkZXJzfDB8MDA", "!!!!", "%00", "%FF", "😀", "",
        "\0", "EUR\0USD", "5\0", "\u0001", "\u007f", "open\n", "\t",
    ];

    private readonly List<string> _keys = [];
    private int _count;

    public FuzzRequest Next()
    {
        var which = random.Next(Templates);
        var request = Template(which);
        var (method, path) = (request.Method, request.Path);
        // A tenth go through untouched, so valid work keeps changing the database between the rejected requests.
        var mutations = random.Next(10) == 0 ? 0 : 1 + random.Next(3);
        for (var i = 0; i < mutations; i++)
        {
            Mutate(request);
        }

        // Last, so no later mutation can undo it: now and then a mutation that must get the request refused.
        if (random.Next(6) == 0)
        {
            var unrouted = request.Method == method && request.Path == path;
            MakeInvalid(request, readsKey: which is 0 or 1 or 12 && unrouted, readsBody: which is 0 or 1 or 4 or 9 or 11 or 12 or 13 or 15 or 16 && unrouted);
        }

        // Keys of untouched orders: those executed (or were stored as rejections), so reusing one with another
        // payload gets 422.
        if (which is 0 or 1 && request.Mutations.Count == 0 && request.Header("Idempotency-Key") is { } key)
        {
            _keys.Add(key);
        }

        return request;
    }

    /// <summary>
    /// One of the hostile inputs that once got a 500 or went through changed: a decimal with more decimals than allowed
    /// or a numeric string with something extra, a control character in a query value, two Idempotency-Keys, or a body
    /// whose chunked framing is broken. Whatever else was mutated before, the answer must be a 4xx.
    /// </summary>
    private void MakeInvalid(FuzzRequest request, bool readsKey, bool readsBody)
    {
        // Only where the route (still) reads the body or the key: other routes ignore them, however broken.
        var choices = new List<Func<bool>>();
        if (readsBody && request.Body is not null)
        {
            choices.Add(() => OverPreciseDecimal(request));
            choices.Add(() => BreakFraming(request));
        }

        if (request.Path.Contains('?', StringComparison.Ordinal))
        {
            choices.Add(() => ControlCharacterInQuery(request));
        }

        // A blank first value never travels: the client drops it, and the server sees one key.
        if (readsKey && !string.IsNullOrWhiteSpace(request.Header("Idempotency-Key")))
        {
            choices.Add(() => SecondIdempotencyKey(request));
        }

        if (choices.Count > 0)
        {
            One(choices)();
        }
    }

    private bool OverPreciseDecimal(FuzzRequest request)
    {
        try
        {
            if (JsonNode.Parse(request.Body) is not JsonObject root)
            {
                return false;
            }

            // The decimal fields of the body, or of its first nested object (instruments[0], positions[0]).
            var parent = root;
            if (!parent.Any(p => DecimalFields.Contains(p.Key)))
            {
                parent = parent.Select(p => p.Value).OfType<JsonArray>().FirstOrDefault(a => a.Count > 0 && a[0] is JsonObject)?[0] as JsonObject;
            }

            var fields = parent?.Where(p => DecimalFields.Contains(p.Key)).Select(p => p.Key).ToList() ?? [];
            if (fields.Count == 0)
            {
                return false;
            }

            var raws = new List<string>();
            var field = One(fields);
            var value = One(OverPreciseOrNotQuiteNumbers);
            parent![field] = Raw(raws, value);
            request.Body = Encoding.UTF8.GetBytes(Substitute(root.ToJsonString(), raws));
            return Refuse(request, $"{field} = {value}");
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
        {
            // Not JSON any more, or JSON that JsonNode will not read or write back (invalid UTF-8, a lone surrogate
            // escape, a duplicated key): the body stays as it was.
            return false;
        }
    }

    private bool ControlCharacterInQuery(FuzzRequest request)
    {
        if (request.Path.Contains('#', StringComparison.Ordinal))
        {
            // Behind a fragment the "query" is never sent.
            return false;
        }

        var (path, query) = SplitQuery(request.Path);
        var pairs = query.TrimStart('?').Split('&').ToList();
        var at = random.Next(pairs.Count);
        var control = One(ControlCharacters);
        var pair = pairs[at];
        if (pair.Length == 0 || pair[0] == '=')
        {
            // A parameter without a name is dropped by both hosts before Core sees the query.
            return false;
        }

        var valueStart = pair.IndexOf('=', StringComparison.Ordinal) + 1;
        var insertAt = valueStart + random.Next(pair.Length - valueStart + 1);
        pairs[at] = pair.Insert(insertAt, control);
        request.Path = path + "?" + string.Join('&', pairs);
        return Refuse(request, $"control character {control} in {pairs[at]}");
    }

    private bool SecondIdempotencyKey(FuzzRequest request)
    {
        request.Headers.Add(new KeyValuePair<string, string>("Idempotency-Key", "second-" + random.Next()));
        return Refuse(request, "two Idempotency-Key headers");
    }

    private bool BreakFraming(FuzzRequest request)
    {
        // Sent as raw bytes: only printable ASCII header values (anything else Kestrel refuses on its own, before the
        // app, with no body), and a body to frame.
        if (request.Body is not { Length: > 0 } || request.Headers.Any(h => h.Value.Any(c => c is < ' ' or > '~')))
        {
            return false;
        }

        request.Framing = One(Framings);
        return Refuse(request, "chunked body with " + request.Framing);
    }

    private static bool Refuse(FuzzRequest request, string why)
    {
        request.MustBeRefused = why;
        request.Mutations.Add(why);
        return true;
    }

    private FuzzRequest Template(int which)
    {
        var n = Interlocked.Increment(ref _count);
        var (method, path, body, token, name) = which switch
        {
            0 => ("POST", "/api/orders", Order(context.SymbolA, "market", "0.01", null), context.TraderToken, "market order"),
            1 => ("POST", "/api/orders", Order(context.SymbolB, "limit", "1", "2500"), context.TraderToken, "limit order"),
            2 => ("GET", $"/api/orders/{context.OrderId}", null, context.TraderToken, "get order"),
            3 => ("GET", $"/api/orders?status=executed&symbol={context.SymbolA}&limit=5", null, context.TraderToken, "list orders"),
            4 => ("POST", $"/api/orders/{context.OrderId}/rollback", new JsonObject { ["reason"] = "fuzz" }, context.AdminToken, "rollback"),
            5 => ("GET", $"/api/transactions/{context.TransactionId}/integrity", null, context.TraderToken, "integrity"),
            6 => ("GET", "/api/accounts/me", null, context.TraderToken, "my account"),
            7 => ("GET", "/api/positions?status=open&limit=3", null, context.TraderToken, "positions"),
            8 => ("GET", $"/api/trades?symbol={context.SymbolA}&pnl=profit&from=2020-01-01T00:00:00Z", null, context.TraderToken, "trades"),
            9 => ("POST", "/api/strategies", new JsonObject { ["name"] = $"fuzz-{n}" }, context.TraderToken, "strategy"),
            10 => ("GET", "/api/health", null, null, "health"),
            11 => ("PUT", "/api/admin/instruments", Instruments(), context.AdminToken, "instruments"),
            12 => ("POST", $"/api/admin/accounts/{context.Trader}/deposits", new JsonObject { ["amount"] = "10.5" }, context.AdminToken, "deposit"),
            13 => ("POST", "/api/admin/positions/sync", Sync(), context.AdminToken, "positions sync"),
            15 => ("PATCH", $"/api/positions/{context.PositionId}", new JsonObject { ["stop_loss"] = "90", ["take_profit"] = null }, context.TraderToken,
                "position stops"),
            16 => ("PUT", "/api/admin/prices", Prices(), context.AdminToken, "prices"),
            _ => ("POST", "/api/admin/maintenance/orphan-scan", null, context.AdminToken, "maintenance"),
        };
        var request = new FuzzRequest { Method = method, Path = path, Template = name };
        if (token is not null)
        {
            request.SetHeader("Authorization", "Bearer " + token);
        }

        if (body is not null)
        {
            request.Body = Encoding.UTF8.GetBytes(body.ToJsonString());
            request.ContentType = "application/json";
        }

        if (which is 0 or 1 or 12)
        {
            // Now and then an order reuses the key of an earlier untouched one: a replay, or 422 for the other template.
            request.SetHeader("Idempotency-Key", which is not 12 && _keys.Count > 0 && random.Next(10) == 0
                ? _keys[random.Next(_keys.Count)]
                : $"fuzz-{n}-{random.Next():x}");
        }

        return request;
    }

    private void Mutate(FuzzRequest request)
    {
        var kind = random.Next(100);
        switch (kind)
        {
            case < 30 when request.Body is not null:
                try
                {
                    MutateJson(request);
                }
                catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
                {
                    // Earlier mutations left JSON that JsonNode will not rewrite (a lone surrogate escape, a duplicated key).
                    MutateBytes(request);
                }

                break;
            case < 40:
                MutateWholeBody(request);
                break;
            case < 50 when request.Body is not null:
                MutateBytes(request);
                break;
            case < 58:
                Pick(request, "content-type", () => request.ContentType = random.Next(5) == 0 ? null : One(ContentTypes));
                break;
            case < 68:
                MutateIdempotencyKey(request);
                break;
            case < 78:
                MutateAuthorization(request);
                break;
            case < 83:
                Pick(request, "method", () => request.Method = One(Methods));
                break;
            case < 91:
                MutatePath(request);
                break;
            default:
                MutateQuery(request);
                break;
        }
    }

    private void MutateJson(FuzzRequest request)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(request.Body);
            _ = (root as JsonObject)?.Count;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
        {
            // Not JSON any more, or JSON with a duplicated key that JsonNode refuses: mutate the bytes instead.
            root = null;
        }

        if (root is not JsonObject)
        {
            MutateBytes(request);
            return;
        }

        var raws = new List<string>();
        var (parent, name) = AnyField(root);
        switch (random.Next(7))
        {
            case 0 when name is not null:
                parent.Remove(name);
                request.Mutations.Add($"removed {name}");
                break;
            case 1:
                var unknown = One(["extra", "Symbol", "quantity ", "__proto__", "user_id", "sub", "roles", "", "😀"]);
                parent[unknown] = Raw(raws, One(RawValues));
                request.Mutations.Add($"added {unknown}");
                break;
            case 2 when name is not null:
                var nested = random.Next(4) switch { 0 => 5, 1 => 31, 2 => 33, _ => 1000 };
                parent[name] = Raw(raws, string.Concat(Enumerable.Repeat("[", nested)) + "1" + string.Concat(Enumerable.Repeat("]", nested)));
                request.Mutations.Add($"{name} nested {nested} deep");
                break;
            case 3:
                var size = One([60 * 1024, 65_535, 65_536, 65_537, 70 * 1024, 256 * 1024, 1024 * 1024]);
                parent["pad"] = new string('x', Math.Max(0, size - (request.Body?.Length ?? 0)));
                request.Mutations.Add($"padded to about {size} bytes");
                break;
            case 4 when name is not null:
                var text = parent[name]?.ToJsonString() ?? "null";
                var value = One(RawValues);
                request.Mutations.Add($"{name} duplicated as {value}");
                request.Body = Encoding.UTF8.GetBytes(Substitute(root.ToJsonString(), raws)
                    .Insert(1, $"\"{name}\":{(random.Next(2) == 0 ? value : text)},"));
                return;
            default:
                if (name is null)
                {
                    break;
                }

                var weird = random.Next(6) == 0 ? new string('9', random.Next(20, 5000)) : One(RawValues);
                parent[name] = Raw(raws, weird);
                request.Mutations.Add($"{name} = {(weird.Length > 40 ? weird[..40] + "..." : weird)}");
                break;
        }

        request.Body = Encoding.UTF8.GetBytes(Substitute(root.ToJsonString(), raws));
    }

    private void MutateWholeBody(FuzzRequest request)
    {
        var original = request.Body is null ? "{}" : Encoding.UTF8.GetString(request.Body);
        var bodies = new[]
        {
            "", "null", "[]", "123", "\"text\"", "{", "{\"a\":", "{}", "{} {}", "\uFEFF" + original, original + " trailing", original + ",",
            "/* comment */" + original, original.Replace("\"", "'", StringComparison.Ordinal), original.Replace("}", ",}", StringComparison.Ordinal),
            string.Concat(Enumerable.Repeat("[", 100_000)), "{\"a\":" + string.Concat(Enumerable.Repeat("{\"a\":", 64)) + "1" + new string('}', 65),
            original[..(original.Length / 2)], new string(' ', 70_000) + original, "\0\0\0\0", "<xml/>", "a=1&b=2",
        };
        var index = random.Next(bodies.Length);
        request.Body = Encoding.UTF8.GetBytes(bodies[index]);
        request.ContentType ??= "application/json";
        request.Mutations.Add($"body #{index}");
    }

    private void MutateBytes(FuzzRequest request)
    {
        var bytes = (request.Body ?? [])[..].ToList();
        switch (random.Next(4))
        {
            case 0:
                byte[][] invalid = [[0xFF], [0xC3, 0x28], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x80], [0xE2, 0x82]];
                var insert = invalid[random.Next(invalid.Length)];
                var at = IndexInsideString(bytes);
                bytes.InsertRange(at, insert);
                request.Mutations.Add($"invalid UTF-8 {Convert.ToHexString(insert)} at {at}");
                break;
            case 1:
                var flips = 1 + random.Next(5);
                for (var i = 0; i < flips && bytes.Count > 0; i++)
                {
                    bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                }

                request.Mutations.Add($"{flips} random bytes");
                break;
            case 2:
                var keep = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
                bytes.RemoveRange(keep, bytes.Count - keep);
                request.Mutations.Add($"truncated to {keep} bytes");
                break;
            default:
                bytes.InsertRange(0, [0xEF, 0xBB, 0xBF]);
                request.Mutations.Add("UTF-8 BOM");
                break;
        }

        request.Body = [.. bytes];
    }

    private void MutateIdempotencyKey(FuzzRequest request)
    {
        var previous = _keys.Count > 0 ? _keys[random.Next(_keys.Count)] : "fuzz-none";
        string?[] keys =
        [
            null, "", " ", new string('k', 255), new string('k', 256), "\t", "ключ", "key\u007f", "key\u0000", previous, previous,
            $"{previous}, {previous}", "~!@#$%^&*()_+{}|:<>?", new string(' ', 10), "a\u00a0b",
        ];
        var key = keys[random.Next(keys.Length)];
        request.SetHeader("Idempotency-Key", key);
        if (key is not null && random.Next(8) == 0)
        {
            request.Headers.Add(new KeyValuePair<string, string>("Idempotency-Key", "second-" + key));
        }

        request.Mutations.Add(key is null ? "no Idempotency-Key" : $"Idempotency-Key of {key.Length} chars");
    }

    private void MutateAuthorization(FuzzRequest request)
    {
        string?[] values =
        [
            null, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer garbage", "Bearer a.b.c", "Bearer ..", "bearer " + context.TraderToken,
            "Bearer " + context.TraderToken + "x", "Bearer  " + context.AdminToken, "Bearer " + new string('a', 10_000), "Token " + context.AdminToken,
            "Bearer " + context.TraderToken, "Bearer " + context.AdminToken, "Bearer " + One(context.BadTokens), "Bearer " + One(context.BadTokens),
        ];
        var index = random.Next(values.Length);
        request.SetHeader("Authorization", values[index]);
        request.Mutations.Add($"authorization #{index}");
    }

    private void MutatePath(FuzzRequest request)
    {
        var (path, query) = SplitQuery(request.Path);
        var parts = path.Split('/').ToList();
        switch (random.Next(5))
        {
            case 0 when parts.Count > 3:
                parts[random.Next(3, parts.Count)] = random.Next(4) == 0 ? new string('z', 5000) : One(Segments);
                break;
            case 1:
                parts.Add(One(Segments));
                break;
            case 2:
                path = One(["/api/nope", "/api", "/", "/API/ORDERS", "/api//orders", "/api/orders/", "/api/orders/x/y/z", "/api/admin", "/api/health/",
                    $"/api/admin/accounts/{context.TraderWithoutAccount}/deposits", $"/api/orders/{context.OrderId.ToString().ToUpperInvariant()}"]);
                request.Path = path + query;
                request.Mutations.Add($"path {path}");
                return;
            default:
                parts[^1] += One(["/", "%20", "?", "#frag", ";x=1", "%2F"]);
                break;
        }

        // "//x" would name a host, not a path: no client sends that as a request target.
        request.Path = "/" + string.Join('/', parts).TrimStart('/') + query;
        request.Mutations.Add($"path {Shorten(request.Path)}");
    }

    private void MutateQuery(FuzzRequest request)
    {
        var name = One(QueryNames);
        var value = Uri.EscapeDataString(One(QueryValues));
        if (random.Next(6) == 0)
        {
            value = new string('c', random.Next(100, 3000));
        }

        request.Path += (request.Path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + $"{name}={value}";
        if (random.Next(4) == 0)
        {
            request.Path += $"&{name}={value}";
        }

        request.Mutations.Add($"query {name}={Shorten(value)}");
    }

    private (JsonObject Parent, string? Name) AnyField(JsonNode root)
    {
        var parent = root.AsObject();
        // Descend into nested objects and arrays (instruments[0], positions[0]) now and then.
        while (true)
        {
            var names = parent.Select(p => p.Key).ToList();
            if (names.Count == 0)
            {
                return (parent, null);
            }

            var name = names[random.Next(names.Count)];
            var child = parent[name] switch
            {
                JsonObject o => o,
                JsonArray { Count: > 0 } a when a[0] is JsonObject first => first,
                _ => null,
            };
            if (child is null || random.Next(3) == 0)
            {
                return (parent, name);
            }

            parent = child;
        }
    }

    private int IndexInsideString(List<byte> bytes)
    {
        var quotes = bytes.Select((b, i) => (b, i)).Where(x => x.b == (byte)'"').Select(x => x.i).ToList();
        return quotes.Count > 0 ? quotes[random.Next(quotes.Count)] + 1 : random.Next(bytes.Count + 1);
    }

    private void Pick(FuzzRequest request, string what, Action change)
    {
        change();
        request.Mutations.Add(what);
    }

    private T One<T>(IReadOnlyList<T> values) => values[random.Next(values.Count)];

    private static JsonNode Raw(List<string> raws, string text)
    {
        raws.Add(text);
        return JsonValue.Create($"{RawMarker}{raws.Count - 1}")!;
    }

    private static string Substitute(string json, List<string> raws)
    {
        for (var i = 0; i < raws.Count; i++)
        {
            json = json.Replace($"\"{RawMarker}{i}\"", raws[i], StringComparison.Ordinal);
        }

        return json;
    }

    private static (string Path, string Query) SplitQuery(string path)
    {
        var at = path.IndexOf('?', StringComparison.Ordinal);
        return at < 0 ? (path, "") : (path[..at], path[at..]);
    }

    private static string Shorten(string text) => text.Length > 60 ? text[..60] + "..." : text;

    private static JsonObject Order(string symbol, string type, string quantity, string? limit)
    {
        var order = new JsonObject { ["symbol"] = symbol, ["side"] = "buy", ["type"] = type, ["quantity"] = quantity };
        if (limit is not null)
        {
            order["limit_price"] = limit;
        }

        return order;
    }

    private JsonObject Instruments() => new()
    {
        ["instruments"] = new JsonArray(new JsonObject
        {
            ["symbol"] = context.SymbolA,
            ["contract_size"] = 1,
            ["margin_rate"] = 0.1m,
            ["commission_rate"] = 0.001m,
            ["min_qty"] = 0.01m,
            ["qty_step"] = 0.01m,
            ["tick_size"] = 0.01m,
            ["last_price"] = (100 + random.Next(-50, 51) / 100m).ToString(CultureInfo.InvariantCulture),
        }),
    };

    private JsonObject Sync() => new()
    {
        ["user_id"] = context.Trader.ToString(),
        ["positions"] = new JsonArray(new JsonObject
        {
            ["symbol"] = context.SymbolA,
            ["side"] = "long",
            ["quantity"] = "0.5",
            ["avg_entry_price"] = "100",
        }),
        ["closing_prices"] = new JsonArray(new JsonObject { ["symbol"] = context.SymbolA, ["price"] = "100" }),
    };

    private JsonObject Prices() => new()
    {
        ["prices"] = new JsonArray(new JsonObject
        {
            ["symbol"] = context.SymbolA,
            ["price"] = (100 + random.Next(-50, 51) / 100m).ToString(CultureInfo.InvariantCulture),
        }),
    };
}
