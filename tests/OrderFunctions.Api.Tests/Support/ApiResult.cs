using System.Net.Http.Headers;
using System.Text.Json;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>One HTTP response as the tests read it: status, headers and the parsed envelope.</summary>
public sealed class ApiResult
{
    public const string ProblemMediaType = "application/problem+json";
    public const string JsonMediaType = "application/json";

    private ApiResult(int status, string? mediaType, HttpResponseHeaders headers, string text, JsonElement root)
    {
        Status = status;
        MediaType = mediaType;
        Headers = headers;
        Text = text;
        Root = root;
    }

    public int Status { get; }
    public string? MediaType { get; }
    public HttpResponseHeaders Headers { get; }
    public string Text { get; }
    public JsonElement Root { get; }
    public JsonElement Data => Root.GetProperty("data");
    public bool Success => Root.GetProperty("success").GetBoolean();
    public string? ErrorCode => Root.GetProperty("error_code").GetString();

    /// <summary>The fields named by a validation error (data.errors[].field).</summary>
    public IReadOnlyList<string> ErrorFields =>
        Data.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array
            ? errors.EnumerateArray().Select(e => e.GetProperty("field").GetString()!).ToList()
            : [];

    public string? Header(string name) => Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;

    public static async Task<ApiResult> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(text);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new Xunit.Sdk.XunitException($"{(int)response.StatusCode} response is not JSON: {text}");
        }

        return new ApiResult((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, response.Headers, text, root);
    }

    /// <summary>A successful envelope with this status; returns its data.</summary>
    public JsonElement AssertSuccess(int status)
    {
        Assert.True(status == Status, $"expected {status}, got {Status}: {Text}");
        Assert.Equal(JsonMediaType, MediaType);
        Assert.True(Success, Text);
        Assert.Equal(JsonValueKind.Null, Root.GetProperty("error_code").ValueKind);
        Assert.Equal(JsonValueKind.Null, Root.GetProperty("error_message").ValueKind);
        Assert.Equal(status, Root.GetProperty("status").GetInt32());
        AssertTimestamp();
        return Data;
    }

    /// <summary>
    /// An error envelope that is also an RFC 9457 problem document (type, title, status, detail), with this
    /// status and error code, and nothing in it that belongs to the server's internals.
    /// </summary>
    public ApiResult AssertProblem(int status, string errorCode)
    {
        Assert.True(status == Status && errorCode == ErrorCode, $"expected {status} {errorCode}, got {Status}: {Text}");
        Assert.Equal(ProblemMediaType, MediaType);
        Assert.False(Success);
        Assert.Equal(status, Root.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(Root.GetProperty("error_message").GetString()));
        Assert.Equal("urn:orderfunctions:problem:" + errorCode.ToLowerInvariant().Replace('_', '-'), Root.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(Root.GetProperty("title").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(Root.GetProperty("detail").GetString()));
        Assert.Equal(JsonValueKind.Object, Data.ValueKind);
        AssertTimestamp();
        AssertNoInternals();
        return this;
    }

    /// <summary>A 400 VALIDATION_ERROR (or 413/415) naming <paramref name="field"/> in data.errors.</summary>
    public ApiResult AssertFieldError(int status, string errorCode, string field)
    {
        AssertProblem(status, errorCode);
        Assert.True(ErrorFields.Contains(field), $"expected an error for field '{field}', got [{string.Join(", ", ErrorFields)}]: {Text}");
        foreach (var error in Data.GetProperty("errors").EnumerateArray())
        {
            Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        }

        return this;
    }

    private void AssertTimestamp()
    {
        var timestamp = Root.GetProperty("timestamp").GetString();
        Assert.True(DateTimeOffset.TryParse(timestamp, System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal, out _), $"timestamp '{timestamp}' is not ISO 8601");
        Assert.EndsWith("Z", timestamp, StringComparison.Ordinal);
    }

    private void AssertNoInternals()
    {
        foreach (var leak in new[] { "   at ", "Npgsql", "Exception", "SELECT ", "Password=", "Host=", "trading." })
        {
            Assert.DoesNotContain(leak, Text, StringComparison.Ordinal);
        }
    }
}
