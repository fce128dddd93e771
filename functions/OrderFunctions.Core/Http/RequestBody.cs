using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrderFunctions.Core.Http;

/// <summary>Reads a JSON request body with the API's limits: 64 KiB, JSON media type, well-formed.</summary>
public static class RequestBody
{
    public const int MaxBytes = 64 * 1024;

    /// <summary>
    /// Reads a JSON object body field by field: <paramref name="read"/> asks for each field, unknown fields are
    /// refused, and every problem (with any the caller already found, e.g. in headers) comes back as one 400.
    /// </summary>
    public static async Task<(T? Value, ApiResponse? Error)> ReadFieldsAsync<T>(ApiRequest request, Func<FieldReader, T> read,
        CancellationToken cancellationToken, List<FieldError>? errors = null)
    {
        var (document, error) = await ReadJsonAsync(request, cancellationToken);
        if (error is not null)
        {
            return (default, error);
        }

        using (document)
        {
            errors ??= [];
            var fields = new FieldReader(document!.RootElement, errors);
            var value = read(fields);
            fields.RejectUnknownFields();
            return errors.Count > 0 ? (default, ApiResponse.Validation(errors)) : (value, null);
        }
    }

    /// <summary>Parses the body, or returns the 413/415/400 response that explains why not.</summary>
    public static async Task<(JsonDocument? Document, ApiResponse? Error)> ReadJsonAsync(ApiRequest request, CancellationToken cancellationToken)
    {
        var contentType = request.Header("Content-Type");
        if (!string.IsNullOrEmpty(contentType) && !IsJson(contentType))
        {
            var message = $"must be application/json, not {contentType}";
            return (null, ApiResponse.Error(ErrorCodes.UnsupportedMediaType, "Content-Type: " + message, FieldErrors("Content-Type", message)));
        }

        // The Azure Functions host forwards a body only when Content-Length announces it: a chunked body reaches the
        // app empty. Both hosts refuse it by name, so it never reads as "no body" on one and works on the other.
        if (request.Header("Content-Length") is null
            && (request.Header("Transfer-Encoding") ?? "").Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            const string message = "is required: a chunked body (Transfer-Encoding: chunked) does not reach the Azure Functions app";
            return (null, ApiResponse.Error(ErrorCodes.LengthRequired, "Content-Length " + message, FieldErrors("Content-Length", message)));
        }

        if (long.TryParse(request.Header("Content-Length"), out var declared) && declared > MaxBytes)
        {
            return (null, TooLarge());
        }

        byte[] bytes;
        try
        {
            bytes = await ReadLimitedAsync(request.Body, cancellationToken);
        }
        catch (BodyTooLargeException)
        {
            return (null, TooLarge());
        }

        if (bytes.Length == 0)
        {
            return (null, ApiResponse.Validation("body", "a JSON object is required"));
        }

        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return (null, ApiResponse.Validation("body", "is not valid UTF-8"));
        }

        try
        {
            // A member given twice is refused: parsers disagree on which one wins, so a proxy could vet one
            // value while the order executes the other.
            var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 32, AllowDuplicateProperties = false });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                return (null, ApiResponse.Validation("body", "must be a JSON object"));
            }

            if (!HasValidText(document.RootElement))
            {
                document.Dispose();
                return (null, ApiResponse.Validation("body", "holds a string with an unpaired surrogate escape (\\uD800-\\uDFFF)"));
            }

            return (document, null);
        }
        catch (JsonException e)
        {
            var where = e.BytePositionInLine is { } col ? $" at line {(e.LineNumber ?? 0) + 1}, byte {col + 1}" : "";
            return (null, ApiResponse.Validation("body", "is not well-formed JSON" + where));
        }
    }

    /// <summary>
    /// Valid UTF-8 can still spell invalid text through escapes (a lone "\uD800"); reading such a string
    /// throws. Every name and string is read once here, so handlers never meet one.
    /// </summary>
    private static bool HasValidText(JsonElement element)
    {
        try
        {
            return Walk(element);
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        static bool Walk(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in e.EnumerateObject())
                    {
                        _ = property.Name;
                        if (!Walk(property.Value))
                        {
                            return false;
                        }
                    }

                    return true;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray())
                    {
                        if (!Walk(item))
                        {
                            return false;
                        }
                    }

                    return true;
                case JsonValueKind.String:
                    _ = e.GetString();
                    return true;
                default:
                    return true;
            }
        }
    }

    private static bool IsJson(string contentType)
    {
        var mediaType = contentType.Split(';')[0].Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (mediaType.StartsWith("application/", StringComparison.OrdinalIgnoreCase)
                && mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
    }

    private static ApiResponse TooLarge() =>
        ApiResponse.Error(ErrorCodes.PayloadTooLarge, $"body: exceeds {MaxBytes} bytes", FieldErrors("body", $"exceeds {MaxBytes} bytes"));

    private static JsonObject FieldErrors(string field, string message) =>
        new() { ["errors"] = Json.ToNode(new[] { new FieldError(field, message) }) };

    private static async Task<byte[]> ReadLimitedAsync(Stream body, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxBytes)
            {
                throw new BodyTooLargeException();
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private sealed class BodyTooLargeException : Exception
    {
    }
}

