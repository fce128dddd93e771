using System.Text.Json.Nodes;

namespace OrderFunctions.Core.Http;

/// <summary>A host-neutral HTTP response: status, headers and a UTF-8 JSON body.</summary>
public sealed class ApiResponse
{
    public const string JsonContentType = "application/json; charset=utf-8";
    public const string ProblemContentType = "application/problem+json; charset=utf-8";

    public required int Status { get; init; }
    public required string ContentType { get; init; }
    public required byte[] Body { get; init; }
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>The envelope of a successful call: <c>{success: true, error_code: null, ..., data}</c>.</summary>
    public static ApiResponse Success(int status, JsonNode? data, IReadOnlyDictionary<string, string>? headers = null)
    {
        var envelope = Envelope.Create(true, null, null, status, data);
        return new ApiResponse { Status = status, ContentType = JsonContentType, Body = Json.Utf8(envelope), Headers = headers ?? Empty };
    }

    public static ApiResponse Success(int status, object data, IReadOnlyDictionary<string, string>? headers = null) =>
        Success(status, Json.ToNode(data), headers);

    /// <summary>An error envelope that is also an RFC 9457 problem document.</summary>
    public static ApiResponse Error(string errorCode, string message, JsonNode? data = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        var status = ErrorCodes.StatusOf(errorCode);
        var envelope = Envelope.Create(false, errorCode, message, status, data);
        Envelope.AddProblemFields(envelope);
        return new ApiResponse { Status = status, ContentType = ProblemContentType, Body = Json.Utf8(envelope), Headers = headers ?? Empty };
    }

    public static ApiResponse Validation(IReadOnlyList<FieldError> errors) =>
        Error(ErrorCodes.ValidationError, string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")),
            new JsonObject { ["errors"] = Json.ToNode(errors) });

    public static ApiResponse Validation(string field, string message) => Validation([new FieldError(field, message)]);

    /// <summary>
    /// A response from an envelope a stored function returned. Its <c>status</c> is the HTTP status unless
    /// <paramref name="status"/> overrides it (a replay answers 200); errors gain the problem fields.
    /// </summary>
    public static ApiResponse FromEnvelope(JsonObject envelope, int? status = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        var code = (int?)envelope["status"] ?? 500;
        if (status is { } s)
        {
            envelope["status"] = s;
            code = s;
        }

        var success = (bool?)envelope["success"] ?? false;
        if (!success)
        {
            Envelope.AddProblemFields(envelope);
        }

        return new ApiResponse
        {
            Status = code,
            ContentType = success ? JsonContentType : ProblemContentType,
            Body = Json.Utf8(envelope),
            Headers = headers ?? Empty,
        };
    }

    private static readonly IReadOnlyDictionary<string, string> Empty = new Dictionary<string, string>();
}

public sealed record FieldError(string Field, string Message);
