using System.Net.Sockets;
using System.Text;
using OrderFunctions.Api.Tests.Support;

namespace OrderFunctions.Api.Tests;

/// <summary>
/// Where the two hosts could hand Core different requests, they must not: the query is read by one parser, repeated
/// header lines arrive joined the same way, and each host's body limit behaves as documented.
/// </summary>
public sealed class HostParityTests(ApiFixture api) : IClassFixture<ApiFixture>
{
    [Theory]
    [InlineData("/api/orders?status=executed&STATUS=failed")]
    [InlineData("/api/orders?status=%u0065xecuted")]
    [InlineData("/api/orders?status=executed%")]
    public async Task Query_reaches_Core_as_one_parser_reads_it_on_both_hosts(string path)
    {
        // A name repeated in any case is two values; %u escapes (which HttpUtility would decode) stay literal.
        var trader = await api.NewTraderAsync(1_000m);

        var result = await api.GetAsync(path, ApiFixture.TokenFor(trader));

        result.AssertFieldError(400, "VALIDATION_ERROR", "status");
    }

    [Fact]
    public async Task Query_names_and_values_with_escapes_are_decoded_alike_on_both_hosts()
    {
        var trader = await api.NewTraderAsync(1_000m);

        var result = await api.GetAsync("/api/orders?st%61tus=ex%65cuted&limit=5", ApiFixture.TokenFor(trader));

        Assert.Equal(0, result.AssertSuccess(200).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task Repeated_header_lines_reach_Core_joined_with_a_comma_on_both_hosts_so_two_keys_are_refused()
    {
        // Both hosts join a header given twice with a comma; Core takes a comma in an Idempotency-Key for two keys.
        var trader = await api.NewTraderAsync(100_000m);
        const string body = """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01}""";
        var first = "k1-" + Guid.NewGuid().ToString("N");
        var second = "k2-" + Guid.NewGuid().ToString("N");

        var status = await SendWithRepeatedHeaderAsync("/api/orders", ApiFixture.TokenFor(trader), body, "Idempotency-Key", first, second);

        Assert.Equal(400, status);
        Assert.Equal(0, await api.CountAsync("FROM trading.orders WHERE user_id = $1", trader));
    }

    [HostFact(ApiHost.Functions, "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT is the Functions host's own limit; LocalHost refuses such a body with 413 (next test)")]
    public async Task Body_over_the_host_limit_is_refused_by_the_Functions_host_with_an_empty_500_before_the_app_sees_it()
    {
        var worker = ((FunctionsApiHost)api.Host).Worker;
        var invocations = worker.Invocations.Count;
        using var client = api.CreateClient();
        using var content = new ByteArrayContent(new byte[long.Parse(ApiHosts.RequestBodySizeLimit, System.Globalization.CultureInfo.InvariantCulture) + 1]);
        content.Headers.ContentType = new("application/json");

        using var response = await client.PostAsync(new Uri("/api/orders", UriKind.Relative), content);

        Assert.Equal(500, (int)response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(invocations, worker.Invocations.Count);
    }

    [HostFact(ApiHost.Local, "on the Functions host a body this large never reaches the app (previous test)")]
    public async Task Body_over_the_host_limit_is_413_PAYLOAD_TOO_LARGE_on_LocalHost()
    {
        var result = await api.SendRawAsync(HttpMethod.Post, "/api/orders", ApiFixture.TokenFor(Guid.NewGuid()),
            new string(' ', int.Parse(ApiHosts.RequestBodySizeLimit, System.Globalization.CultureInfo.InvariantCulture) + 1), "application/json",
            new Dictionary<string, string> { ["Idempotency-Key"] = Guid.NewGuid().ToString() });

        result.AssertFieldError(413, "PAYLOAD_TOO_LARGE", "body");
    }

    /// <summary>
    /// A POST with one header on two lines. HttpClient would join the values into one line, so to the worker's
    /// front this goes over a raw socket; the test server takes the values separately, as Kestrel parses two lines.
    /// </summary>
    private async Task<int> SendWithRepeatedHeaderAsync(string path, string token, string body, string header, string first, string second)
    {
        if (api.Host is LocalApiHost)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new("Bearer", token);
            request.Headers.TryAddWithoutValidation(header, new[] { first, second });
            using var client = api.CreateClient();
            using var response = await client.SendAsync(request);
            return (int)response.StatusCode;
        }

        using var probe = api.CreateClient();
        var address = probe.BaseAddress!;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        var bytes = Encoding.UTF8.GetBytes(body);
        var head = $"POST {path} HTTP/1.1\r\nHost: {address.Authority}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                   + $"{header}: {first}\r\n{header}: {second}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
        await using var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(bytes);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var statusLine = await reader.ReadLineAsync() ?? "";
        return int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
