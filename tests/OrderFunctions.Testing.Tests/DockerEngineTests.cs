using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using OrderFunctions.Testing;

namespace OrderFunctions.Testing.Tests;

/// <summary>The Docker probe against fake engines on Unix sockets: no real engine runs on the build machines.</summary>
public sealed class DockerEngineTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("docker-probe-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Probe_finds_an_engine_that_answers_ping()
    {
        using var engine = Listen("answers.sock");
        var serving = ServeOnceAsync(engine, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");

        Assert.True(await DockerEngine.AnswersPingAsync($"unix://{_directory}/answers.sock"));
        await serving;
    }

    [Fact]
    public async Task Probe_gives_up_within_seconds_when_the_engine_never_answers()
    {
        using var engine = Listen("silent.sock");
        var stopwatch = Stopwatch.StartNew();

        var answered = await DockerEngine.AnswersPingAsync($"unix://{_directory}/silent.sock");

        Assert.False(answered);
        Assert.InRange(stopwatch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Probe_reports_no_engine_when_the_socket_file_is_missing()
    {
        Assert.False(await DockerEngine.AnswersPingAsync($"unix://{_directory}/missing.sock"));
    }

    [Fact]
    public async Task Probe_reports_no_engine_when_ping_fails()
    {
        using var engine = Listen("failing.sock");
        var serving = ServeOnceAsync(engine, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");

        Assert.False(await DockerEngine.AnswersPingAsync($"unix://{_directory}/failing.sock"));
        await serving;
    }

    private Socket Listen(string name)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(_directory, name)));
        socket.Listen();
        return socket;
    }

    private static async Task ServeOnceAsync(Socket listener, string response)
    {
        using var client = await listener.AcceptAsync();
        var buffer = new byte[1024];
        var request = "";
        while (!request.Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await client.ReceiveAsync(buffer);
            Assert.True(read > 0, "the probe closed the connection before finishing its request");
            request += Encoding.ASCII.GetString(buffer, 0, read);
        }

        Assert.StartsWith("GET /_ping ", request, StringComparison.Ordinal);
        await client.SendAsync(Encoding.ASCII.GetBytes(response));
        client.Shutdown(SocketShutdown.Both);
    }
}
