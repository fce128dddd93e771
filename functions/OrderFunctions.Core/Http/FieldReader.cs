using System.Globalization;
using System.Text.Json;

namespace OrderFunctions.Core.Http;

/// <summary>
/// Reads the fields of one JSON object, collecting every problem as a <see cref="FieldError"/> instead of
/// stopping at the first, so a client learns all that is wrong in one round.
/// </summary>
public sealed class FieldReader
{
    private readonly JsonElement _object;
    private readonly string _prefix;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public FieldReader(JsonElement obj, List<FieldError> errors, string prefix = "")
    {
        _object = obj;
        Errors = errors;
        _prefix = prefix;
    }

    public List<FieldError> Errors { get; }

    public void Fail(string field, string message) => Errors.Add(new FieldError(_prefix + field, message));

    /// <summary>Reports members that no reader asked for: a typo must not be silently ignored.</summary>
    public void RejectUnknownFields()
    {
        foreach (var property in _object.EnumerateObject())
        {
            if (!_known.Contains(property.Name))
            {
                Fail(property.Name, "is not a known field");
            }
        }
    }

    public string? String(string name, bool required, int maxLength, IReadOnlyCollection<string>? allowed = null)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            Fail(name, "must be a string");
            return null;
        }

        var text = value.GetString()!;
        if (allowed is not null && !allowed.Contains(text))
        {
            Fail(name, $"must be one of {string.Join(", ", allowed)}");
            return null;
        }

        if (text.Trim().Length == 0 || text.Length > maxLength)
        {
            Fail(name, $"must be 1 to {maxLength} characters");
            return null;
        }

        // PostgreSQL text cannot hold NUL, and no field here has a use for control characters.
        if (text.Any(char.IsControl))
        {
            Fail(name, "must not contain control characters");
            return null;
        }

        return text;
    }

    public Guid? Uuid(string name, bool required)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String && Guid.TryParseExact(value.GetString(), "D", out var id))
        {
            return id;
        }

        Fail(name, "must be a UUID string");
        return null;
    }

    public bool? Boolean(string name, bool required)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        if (value.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            return value.GetBoolean();
        }

        Fail(name, "must be true or false");
        return null;
    }

    /// <summary>
    /// An exact decimal given as a JSON number or a numeric string, within <paramref name="range"/> (its bounds and
    /// digits after the point; trailing zeros do not count).
    /// </summary>
    public decimal? Decimal(string name, bool required, DecimalRange range)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        string raw;
        if (value.ValueKind == JsonValueKind.Number)
        {
            raw = value.GetRawText();
        }
        else if (value.ValueKind == JsonValueKind.String)
        {
            raw = value.GetString()!;
        }
        else
        {
            Fail(name, "must be a number");
            return null;
        }

        var problem = ExactDecimal.TryParse(raw, range.MaxDecimals, range.MaxIntegerDigits, out var number) switch
        {
            ExactDecimal.Problem.NotANumber => "must be a number",
            ExactDecimal.Problem.TooManyDecimals => $"must have at most {range.MaxDecimals} decimals",
            // Too many integer digits: past the upper bound, or (negative) past the lower one.
            ExactDecimal.Problem.TooLarge => raw.TrimStart().StartsWith('-')
                ? Bound("greater than", range.GreaterThan) ?? Bound("at least", range.AtLeast) ?? Bound("below", range.Below) ?? Bound("at most", range.AtMost)
                : Bound("below", range.Below) ?? Bound("at most", range.AtMost),
            _ => range switch
            {
                { GreaterThan: { } gt } when number <= gt => Bound("greater than", gt),
                { AtLeast: { } min } when number < min => Bound("at least", min),
                { Below: { } below } when number >= below => Bound("below", below),
                { AtMost: { } max } when number > max => Bound("at most", max),
                _ => null,
            },
        };
        if (problem is not null)
        {
            Fail(name, problem);
            return null;
        }

        return Json.Normalize(number);
    }

    private static string? Bound(string relation, decimal? bound) =>
        bound is { } b ? $"must be {relation} {b.ToString(CultureInfo.InvariantCulture)}" : null;

    /// <summary>
    /// An array of objects, each read by <paramref name="readItem"/> with its own reader whose errors are named
    /// <c>name[i].field</c>; unknown fields of each item are refused. Returns how many items there were.
    /// </summary>
    public int? Objects(string name, bool required, int maxItems, Action<FieldReader> readItem)
    {
        if (Array(name, required, maxItems) is not { } array)
        {
            return null;
        }

        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            var prefix = $"{_prefix}{name}[{index++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                Errors.Add(new FieldError(prefix, "must be an object"));
                continue;
            }

            var reader = new FieldReader(item, Errors, prefix + ".");
            readItem(reader);
            reader.RejectUnknownFields();
        }

        return index;
    }

    public JsonElement? Array(string name, bool required, int maxItems)
    {
        if (!TryGet(name, required, out var value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            Fail(name, "must be an array");
            return null;
        }

        if (value.GetArrayLength() > maxItems)
        {
            Fail(name, $"must have at most {maxItems} items");
            return null;
        }

        return value;
    }

    /// <summary>Whether the member is there at all, null included: for fields where an explicit null means "clear it".</summary>
    public bool Has(string name)
    {
        _known.Add(name);
        return _object.TryGetProperty(name, out _);
    }

    private bool TryGet(string name, bool required, out JsonElement value)
    {
        _known.Add(name);
        if (_object.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
        {
            return true;
        }

        if (required)
        {
            Fail(name, "is required");
        }

        return false;
    }
}
