using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace OrderFunctions.Core.Http;

/// <summary>
/// The Idempotency-Key conventions shared by every route that moves money (IETF Idempotency-Key draft):
/// the header, the request fingerprint stored next to the key, and how a replayed response is answered.
/// </summary>
public static class Idempotency
{
    public const string KeyHeader = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";

    /// <summary>Reads the key; a missing key is an error only when <paramref name="required"/>.</summary>
    public static string? ReadKey(ApiRequest request, bool required, List<FieldError> errors)
    {
        var key = request.Header(KeyHeader);
        if (key is null)
        {
            if (required)
            {
                errors.Add(new FieldError(KeyHeader,
                    "is required: a new unique value for each request (a UUID, say), sent again only to repeat that request"));
            }
        }
        else if (key.Contains(',', StringComparison.Ordinal))
        {
            // Hosts join a header given twice with commas (HTTP's list syntax), so a comma means two keys.
            errors.Add(new FieldError(KeyHeader, "must be given once, as one value without commas"));
        }
        else if (key.Length is < 1 or > 255 || key.Any(c => c is < ' ' or > '~'))
        {
            errors.Add(new FieldError(KeyHeader, "must be 1-255 printable ASCII characters"));
        }

        return key;
    }

    /// <summary>
    /// The request's identity: sha256 over its canonical parts, decimals without trailing zeros, so the same
    /// request in any JSON spelling (field order, 1.5 vs "1.50") has the same fingerprint.
    /// </summary>
    public static string Fingerprint(params object?[] parts)
    {
        static string Canonical(object? part) => part switch
        {
            null => "",
            decimal d => Json.Normalize(d).ToString(CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => part.ToString() ?? "",
        };
        var canonical = string.Join('\u001f', parts.Select(Canonical));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>
    /// The HTTP answer to a keyed call's envelope: a stored response the database marked "replayed" goes back
    /// with 200 (if it was a success) and Idempotent-Replayed: true; a first answer keeps
    /// <paramref name="firstStatus"/> when it succeeded.
    /// </summary>
    public static ApiResponse Respond(JsonObject envelope, int? firstStatus = null)
    {
        var success = (bool?)envelope["success"] == true;
        if (envelope.Remove("replayed"))
        {
            return ApiResponse.FromEnvelope(envelope, success ? 200 : null, new Dictionary<string, string> { [ReplayedHeader] = "true" });
        }

        return ApiResponse.FromEnvelope(envelope, success ? firstStatus : null);
    }
}
