using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using OrderFunctions.Reliability.Tests.Support;

namespace OrderFunctions.Reliability.Tests;

/// <summary>
/// JSON that parses but whose text is not Unicode (invalid UTF-8 bytes, a lone UTF-16 surrogate escape) or that
/// PostgreSQL text cannot hold (U+0000) is bad input like any other: 400 VALIDATION_ERROR, never a 500
/// (found by <see cref="HttpFuzzTests"/>).
/// </summary>
public sealed class MalformedJsonTextTests(LocalHostFixture host) : IClassFixture<LocalHostFixture>
{
    // 0xFF is never valid in UTF-8; \ud800 and \udfff are halves of a surrogate pair, alone.
    public static TheoryData<string, string, byte[]> Bodies => new()
    {
        { "deposit", "a lone surrogate in a value", Bytes("""{"amount": "\ud800"}""") },
        { "deposit", "invalid UTF-8 in a value", Bytes("{\"amount\": \"", new byte[] { 0xFF }, "10\"}") },
        { "order", "a lone surrogate in a value", Bytes("""{"symbol": "\udfffA", "side": "buy", "type": "market", "quantity": 1}""") },
        { "strategy", "a NUL character in a value", Bytes("""{"name": "a\u0000b"}""") },
        { "order", "invalid UTF-8 in a field name", Bytes("{\"", new byte[] { 0xFF }, "symbol\": \"A\", \"side\": \"buy\", \"type\": \"market\", \"quantity\": 1}") },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task Text_that_is_not_unicode_is_a_validation_error_not_a_500(string route, string what, byte[] body)
    {
        using var client = host.Factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, route switch
        {
            "deposit" => $"/api/admin/accounts/{Guid.NewGuid()}/deposits",
            "strategy" => "/api/strategies",
            _ => "/api/orders",
        });
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", host.Token(Guid.NewGuid(), admin: route == "deposit"));
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.True((int)response.StatusCode == 400, $"{route} with {what} answered {(int)response.StatusCode}: {text}");
        Assert.Equal("VALIDATION_ERROR", JsonDocument.Parse(text).RootElement.GetProperty("error_code").GetString());
    }

    private static byte[] Bytes(params object[] parts) =>
        parts.SelectMany(p => p is string text ? Encoding.UTF8.GetBytes(text) : (byte[])p).ToArray();
}
