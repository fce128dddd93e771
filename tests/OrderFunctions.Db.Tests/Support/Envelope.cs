using System.Globalization;
using System.Text.Json;

namespace OrderFunctions.Db.Tests.Support;

/// <summary>The response every stored function returns (DESIGN.md §3), read from its jsonb text.</summary>
internal sealed class Envelope
{
    private readonly JsonElement _root;

    private Envelope(string json, JsonElement root)
    {
        Json = json;
        _root = root;
    }

    public string Json { get; }

    public bool Success => _root.GetProperty("success").GetBoolean();

    public string? ErrorCode => _root.GetProperty("error_code").GetString();

    public string? ErrorMessage => _root.GetProperty("error_message").GetString();

    public int Status => _root.GetProperty("status").GetInt32();

    public string Timestamp => _root.GetProperty("timestamp").GetString()!;

    public JsonElement Data => _root.GetProperty("data");

    /// <summary>True when the response was replayed for an idempotency key already used.</summary>
    public bool Replayed => _root.TryGetProperty("replayed", out var replayed) && replayed.GetBoolean();

    public static Envelope Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return new Envelope(json, document.RootElement.Clone());
    }

    /// <summary>A value under data by a dotted path, e.g. <c>position.quantity</c>.</summary>
    public JsonElement Get(string path)
    {
        var element = Data;
        foreach (var name in path.Split('.'))
        {
            Assert.True(element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out element), $"data.{path} is missing in {Json}");
        }

        return element;
    }

    public bool Has(string path)
    {
        var element = Data;
        foreach (var name in path.Split('.'))
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out element))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>An exact decimal: money is compared digit for digit, never as a double.</summary>
    public decimal Decimal(string path) => Get(path).GetDecimal();

    public string? String(string path) => Get(path).ValueKind == JsonValueKind.Null ? null : Get(path).GetString();

    public Guid Guid(string path) => System.Guid.Parse(Get(path).GetString()!, CultureInfo.InvariantCulture);

    public bool Bool(string path) => Get(path).GetBoolean();

    public override string ToString() => Json;
}
