using System.Globalization;
using System.Text.Json;

namespace OrderFunctions.Testing;

/// <summary>
/// The response every stored function and every route returns, read from its JSON text.
/// Money is read as exact decimals, never as doubles.
/// </summary>
public sealed class Envelope
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

    /// <summary>True when execute_order replayed the stored response of an idempotency key already used.</summary>
    public bool Replayed => _root.TryGetProperty("replayed", out var replayed) && replayed.ValueKind == JsonValueKind.True;

    public static Envelope Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return new Envelope(json, document.RootElement.Clone());
    }

    /// <summary>A value under data by a dotted path (e.g. <c>position.quantity</c>), or null when absent or JSON null.</summary>
    public JsonElement? Find(string path)
    {
        var element = Data;
        foreach (var name in path.Split('.'))
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out element))
            {
                return null;
            }
        }

        return element.ValueKind == JsonValueKind.Null ? null : element;
    }

    /// <summary>A value under data by a dotted path; throws naming the path when it is absent.</summary>
    public JsonElement Get(string path)
    {
        var element = Data;
        foreach (var name in path.Split('.'))
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out element))
            {
                throw new InvalidOperationException($"data.{path} is missing in {Json}");
            }
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

    public decimal Decimal(string path)
    {
        var element = Get(path);
        return element.ValueKind == JsonValueKind.String
            ? decimal.Parse(element.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture)
            : element.GetDecimal();
    }

    public string? String(string path) => Find(path)?.GetString();

    public Guid Guid(string path) => System.Guid.Parse(Get(path).GetString()!, CultureInfo.InvariantCulture);

    public Guid? MaybeGuid(string path) =>
        Find(path) is { ValueKind: JsonValueKind.String } e && System.Guid.TryParse(e.GetString(), out var id) ? id : null;

    public bool Bool(string path) => Get(path).GetBoolean();

    public override string ToString() => Json;
}
