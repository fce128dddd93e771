using System.IO.Pipes;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OrderFunctions.Testing;

/// <summary>
/// Whether a Docker engine answers, decided once per process by pinging the endpoint Testcontainers would use
/// (DOCKER_HOST, else the usual sockets) with a short timeout: an absent or hung daemon costs at most a few
/// seconds, never a hang. ORDERS_TEST_DOCKER=0 skips Docker even where it runs.
/// </summary>
public static class DockerEngine
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);
    private static readonly Lazy<Task<string?>> Endpoint = new(FindAsync);

    /// <summary>The endpoint that answered a ping, or null when no Docker engine is usable.</summary>
    public static Task<string?> FindEndpointAsync() => Endpoint.Value;

    private static async Task<string?> FindAsync()
    {
        if (Environment.GetEnvironmentVariable("ORDERS_TEST_DOCKER") is "0" or "false" or "no")
        {
            return null;
        }

        foreach (var candidate in Candidates())
        {
            if (await AnswersPingAsync(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Whether a Docker engine answers <c>GET /_ping</c> at <paramref name="endpoint"/> within the timeout.</summary>
    internal static async Task<bool> AnswersPingAsync(string endpoint)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            return await PingAsync(endpoint, timeout.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or UriFormatException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static IEnumerable<string> Candidates()
    {
        if (Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } dockerHost)
        {
            // An explicit DOCKER_HOST is what Testcontainers uses; falling back to another engine would surprise.
            yield return dockerHost;
            yield break;
        }

        if (OperatingSystem.IsWindows())
        {
            yield return "npipe://./pipe/docker_engine";
            yield break;
        }

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string?[] sockets =
        [
            "/var/run/docker.sock",
            Path.Combine(home, ".docker", "run", "docker.sock"),
            Path.Combine(home, ".docker", "desktop", "docker.sock"),
            Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } runtime ? Path.Combine(runtime, "docker.sock") : null,
        ];
        foreach (var socket in sockets)
        {
            if (socket is not null && File.Exists(socket))
            {
                yield return "unix://" + socket;
            }
        }
    }

    private static async Task<bool> PingAsync(string endpoint, CancellationToken cancellationToken)
    {
        var uri = new Uri(endpoint);
        await using var stream = await ConnectAsync(uri, cancellationToken);
        if (stream is null)
        {
            return false;
        }

        if (uri.Scheme == "https" || Environment.GetEnvironmentVariable("DOCKER_TLS_VERIFY") is { Length: > 0 } and not "0")
        {
            // A TLS engine needs client certificates to answer a ping; that it accepts connections is enough here.
            return true;
        }

        await stream.WriteAsync("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"u8.ToArray(), cancellationToken);
        var buffer = new byte[64];
        var read = 0;
        while (read < 12 && await stream.ReadAsync(buffer.AsMemory(read), cancellationToken) is var n and > 0)
        {
            read += n;
        }

        // "HTTP/1.x 200"
        return read >= 12 && Encoding.ASCII.GetString(buffer, 9, 3) == "200";
    }

    private static async Task<Stream?> ConnectAsync(Uri uri, CancellationToken cancellationToken)
    {
        if (uri.Scheme == "npipe")
        {
            var pipe = new NamedPipeClientStream(".", uri.AbsolutePath[(uri.AbsolutePath.LastIndexOf('/') + 1)..], PipeDirection.InOut, PipeOptions.Asynchronous);
            try
            {
                await pipe.ConnectAsync(cancellationToken);
                return pipe;
            }
            catch
            {
                await pipe.DisposeAsync();
                throw;
            }
        }

        var (socket, endPoint) = uri.Scheme switch
        {
            "unix" => (new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified), (EndPoint)new UnixDomainSocketEndPoint(uri.AbsolutePath)),
            "tcp" or "http" or "https" => (new Socket(SocketType.Stream, ProtocolType.Tcp), new DnsEndPoint(uri.Host, uri.Port)),
            _ => (null, null!),
        };
        if (socket is null)
        {
            return null;
        }

        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
