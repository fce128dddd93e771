using System.Globalization;
using System.Text.Json.Nodes;

namespace OrderFunctions.Core.Http;

/// <summary>The response shape shared with the stored functions (docs/architecture.md, "The envelope").</summary>
public static class Envelope
{
    public static JsonObject Create(bool success, string? errorCode, string? message, int status, JsonNode? data) => new()
    {
        ["success"] = success,
        ["error_code"] = errorCode,
        ["error_message"] = message,
        ["status"] = status,
        ["timestamp"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
        ["data"] = data ?? new JsonObject(),
    };

    /// <summary>Adds RFC 9457 members (type, title, status, detail) so an error envelope is also a problem document.</summary>
    public static void AddProblemFields(JsonObject envelope)
    {
        var code = (string?)envelope["error_code"] ?? ErrorCodes.InternalError;
        envelope["type"] = ErrorCodes.TypeOf(code);
        envelope["title"] = ErrorCodes.TitleOf(code);
        envelope["detail"] = (string?)envelope["error_message"] ?? ErrorCodes.TitleOf(code);
    }
}
