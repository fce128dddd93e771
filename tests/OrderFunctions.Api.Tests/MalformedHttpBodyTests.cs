using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using OrderFunctions.Api.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests;

/// <summary>LocalHost on real Kestrel (not the in-memory test server, which never parses HTTP framing) over a test database.</summary>
public sealed class KestrelFixture : DatabaseFixture
{
    private LocalHostFactory? _factory;

    public int Port { get; private set; }

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _factory = new LocalHostFactory(AppConnectionString);
        _factory.UseKestrel(0);
        _factory.StartServer();
        var address = _factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Port = new Uri(address).Port;
    }

    public override async Task DisposeAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }

        await base.DisposeAsync();
    }
}

/// <summary>
/// Bodies whose chunked framing is broken (a chunk size that is no hex number, one too large to hold, no chunks at
/// all, a chunk longer than its size), sent over a raw socket to every route that reads a body, where Kestrel itself
/// parses the framing (the in-memory test server never does). They once reached Core as Kestrel's exception and a
/// 500; now every chunked body is refused before a byte is read (411: the Azure Functions host would not forward one),
/// as an envelope naming Content-Length, and nothing changes.
/// </summary>
public sealed class MalformedHttpBodyTests(KestrelFixture host) : IClassFixture<KestrelFixture>
{
    public static TheoryData<string, string, string> Cases()
    {
        var routes = new (string Name, string Method, string Path, bool AsAdmin, string Body)[]
        {
            ("order", "POST", "/api/orders", false, """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01}"""),
            ("strategy", "POST", "/api/strategies", false, """{"name":"chunks"}"""),
            ("rollback", "POST", $"/api/orders/{Guid.NewGuid()}/rollback", true, """{"reason":"chunks"}"""),
            ("instruments", "PUT", "/api/admin/instruments", true, """{"instruments":[]}"""),
            ("deposit", "POST", $"/api/admin/accounts/{Guid.NewGuid()}/deposits", true, """{"amount":1}"""),
            ("positions sync", "POST", "/api/admin/positions/sync", true, """{"user_id":"00000000-0000-0000-0000-000000000001","positions":[]}"""),
        };
        var framings = new (string Name, Func<string, string> Frame)[]
        {
            ("a chunk size that is not hex", body => $"zz\r\n{body}\r\n0\r\n\r\n"),
            ("a chunk size beyond any length", body => $"FFFFFFFFFF\r\n{body}\r\n0\r\n\r\n"),
            ("a body sent without chunks", body => body),
            ("a chunk longer than its size", body => $"2\r\n{body}\r\n0\r\n\r\n"),
            ("a chunk without its CRLF", body => $"{body.Length:x}\r\n{body}0\r\n\r\n"),
        };
        var data = new TheoryData<string, string, string>();
        foreach (var route in routes)
        {
            foreach (var framing in framings)
            {
                data.Add(route.Name, framing.Name, Request(route.Method, route.Path, route.AsAdmin, framing.Frame(route.Body)));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_malformed_chunked_body_is_a_411_envelope_and_changes_nothing(string route, string framing, string request)
    {
        var before = await DatabaseState.CaptureAsync(host);

        var (status, contentType, body) = await SendRawAsync(request);

        AssertProblem(route + " with " + framing, 411, "LENGTH_REQUIRED", "Content-Length", status, contentType, body);
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(host));
    }

    [Theory]
    [InlineData("POST", "/api/orders", false, """{"symbol":"EURUSD","side":"buy","type":"market","quantity":0.01}""")]
    [InlineData("PUT", "/api/admin/instruments", true, """{"instruments":[]}""")]
    public async Task A_broken_chunked_body_that_also_announces_a_content_length_is_a_4xx_envelope_and_changes_nothing(string method, string path,
        bool asAdmin, string body)
    {
        // Transfer-Encoding wins over Content-Length (RFC 9112 6.3), so Kestrel reads chunks that are not there.
        var before = await DatabaseState.CaptureAsync(host);
        var token = asAdmin ? AdminToken : ApiFixture.TokenFor(Guid.NewGuid());
        var request = $"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {Guid.NewGuid()}\r\n"
                      + $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}";

        var (status, contentType, answer) = await SendRawAsync(request);

        Assert.True(status is 400 or 411, $"{path} answered {status}: {answer}");
        Assert.StartsWith("application/problem+json", contentType, StringComparison.Ordinal);
        Assert.Equal(status, JsonDocument.Parse(answer).RootElement.GetProperty("status").GetInt32());
        DatabaseState.AssertUnchanged(before, await DatabaseState.CaptureAsync(host));
    }

    private static void AssertProblem(string what, int expectedStatus, string code, string field, int status, string contentType, string body)
    {
        Assert.True(status == expectedStatus, $"{what} answered {status}: {body}");
        Assert.StartsWith("application/problem+json", contentType, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(body);
        Assert.Equal(code, json.RootElement.GetProperty("error_code").GetString());
        Assert.Equal(expectedStatus, json.RootElement.GetProperty("status").GetInt32());
        Assert.Equal(field, json.RootElement.GetProperty("data").GetProperty("errors")[0].GetProperty("field").GetString());
    }

    private static string Request(string method, string path, bool asAdmin, string chunkedBody)
    {
        var token = asAdmin ? AdminToken : ApiFixture.TokenFor(Guid.NewGuid());
        return $"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {Guid.NewGuid()}\r\n"
               + $"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunkedBody}";
    }

    private static string AdminToken => Core.Auth.DevTokens.Create(LocalHostFactory.Auth, ApiFixture.AdminId, admin: true);

    /// <summary>Writes the bytes as they are and reads the whole answer (the connection closes after it).</summary>
    private async Task<(int Status, string ContentType, string Body)> SendRawAsync(string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", host.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var answer = new MemoryStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await stream.CopyToAsync(answer, timeout.Token);
        }
        catch (IOException)
        {
            // Kestrel may reset the connection after answering a request whose body it could not read.
        }

        var text = Encoding.UTF8.GetString(answer.ToArray());
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(headEnd > 0, $"no HTTP answer: '{text}'");
        var head = text[..headEnd].Split("\r\n");
        var status = int.Parse(head[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var contentType = head.FirstOrDefault(h => h.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase))?[13..].Trim() ?? "";
        var body = text[(headEnd + 4)..];
        if (head.Any(h => h.Equals("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)))
        {
            body = Unchunk(body);
        }

        return (status, contentType, body);
    }

    private static string Unchunk(string chunked)
    {
        var body = new StringBuilder();
        var at = 0;
        while (true)
        {
            var lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = Convert.ToInt32(chunked[at..lineEnd], 16);
            if (size == 0)
            {
                return body.ToString();
            }

            body.Append(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }
    }
}
