using System.Globalization;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Handlers;

/// <summary>Reads and validates query-string parameters, collecting every problem.</summary>
public sealed class Query(ApiRequest request)
{
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public List<FieldError> Errors { get; } = [];

    public string? Text(string name, int maxLength, IReadOnlyCollection<string>? allowed = null)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }

        if (value.Length == 0 || value.Length > maxLength)
        {
            Errors.Add(new FieldError(name, $"must be 1 to {maxLength} characters"));
            return null;
        }

        if (allowed is not null && !allowed.Contains(value))
        {
            Errors.Add(new FieldError(name, $"must be one of {string.Join(", ", allowed)}"));
            return null;
        }

        return value;
    }

    public Guid? Uuid(string name)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }

        if (Guid.TryParseExact(value, "D", out var id))
        {
            return id;
        }

        Errors.Add(new FieldError(name, "must be a UUID"));
        return null;
    }

    /// <summary>An ISO 8601 instant with an offset or Z, e.g. 2026-11-24T09:00:00Z.</summary>
    public DateTime? Instant(string name)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.None, out var instant)
            && (value.EndsWith('Z') || value.Contains('+', StringComparison.Ordinal) || value.LastIndexOf('-') > 9))
        {
            return instant.UtcDateTime;
        }

        Errors.Add(new FieldError(name, "must be an ISO 8601 timestamp with a time zone, e.g. 2026-11-24T09:00:00Z"));
        return null;
    }

    public int Limit(int fallback = 50, int max = 500)
    {
        var value = Single("limit");
        if (value is null)
        {
            return fallback;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit >= 1 && limit <= max)
        {
            return limit;
        }

        Errors.Add(new FieldError("limit", $"must be an integer from 1 to {max}"));
        return fallback;
    }

    /// <summary>The "cursor" parameter: where the page of <paramref name="listing"/> starts, as the previous page returned it.</summary>
    public Cursor? PageCursor(string listing)
    {
        var value = Single("cursor");
        if (value is null)
        {
            return null;
        }

        if (Cursor.TryDecode(value, listing, out var cursor))
        {
            return cursor;
        }

        Errors.Add(new FieldError("cursor", "is not a cursor this listing returned"));
        return null;
    }

    /// <summary>Unknown parameters are errors: a misspelt filter must not silently return everything.</summary>
    public void RejectUnknown()
    {
        foreach (var name in request.Query.Keys)
        {
            if (!_known.Contains(name))
            {
                Errors.Add(new FieldError(name, "is not a known query parameter"));
            }
        }
    }

    private string? Single(string name)
    {
        _known.Add(name);
        if (!request.Query.TryGetValue(name, out var values) || values.Count == 0)
        {
            return null;
        }

        if (values.Count > 1)
        {
            Errors.Add(new FieldError(name, "must be given at most once"));
            return null;
        }

        return values[0];
    }
}
