using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace OrderFunctions.Testing;

/// <summary>What the proxy does with the server's reply to a marked request.</summary>
public enum ReplyFault
{
    /// <summary>Swallows the reply once the server has sent all of it (the transaction is over), then closes both sides.</summary>
    Drop,

    /// <summary>Swallows the reply and every byte after it, keeping the connection open: the client waits in vain.</summary>
    Hold,
}

/// <summary>
/// A loopback TCP proxy between a client and PostgreSQL that misbehaves on cue, so a real client meets what a network
/// or a server restart does to it: a reply lost after the server committed, a server that restarts, a postmaster that
/// stops answering. It reads the server's stream message by message (type byte, length), so "after the commit" is
/// exact: a marked request's reply is swallowed up to and including the ReadyForQuery that ends its transaction.
/// Clients must connect without TLS or GSS encryption (<see cref="ConnectionString"/> says so), or the stream is opaque.
/// </summary>
public sealed class PostgresProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly string _targetConnectionString;
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly List<Link> _links = [];
    private readonly Task _accepting;
    private (byte[] Marker, ReplyFault Fault, int Remaining, TimeSpan? RestartFor)? _replyFault;
    private DateTime _downUntil = DateTime.MinValue;
    private bool _stalled;
    private int _lostReplies;

    private PostgresProxy(string targetConnectionString, string targetHost, int targetPort)
    {
        _targetConnectionString = targetConnectionString;
        _targetHost = targetHost;
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Replies the proxy has dropped or held so far.</summary>
    public int LostReplies => Volatile.Read(ref _lostReplies);

    /// <summary>A proxy in front of the server that <paramref name="connectionString"/> names.</summary>
    public static PostgresProxy Start(string connectionString)
    {
        var target = new NpgsqlConnectionStringBuilder(connectionString);
        return new PostgresProxy(connectionString, target.Host is null or "localhost" ? "127.0.0.1" : target.Host, target.Port);
    }

    /// <summary>The connection string the proxy was started with, through the proxy: unencrypted, in a pool of its own.</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder(_targetConnectionString)
    {
        Host = "127.0.0.1",
        Port = Port,
        SslMode = SslMode.Disable,
        GssEncryptionMode = GssEncryptionMode.Disable,
        ApplicationName = "proxied-" + Port,
    }.ConnectionString;

    /// <summary>
    /// The next <paramref name="count"/> requests whose bytes contain <paramref name="marker"/> (a SQL fragment, e.g.
    /// <c>trading.execute_order(</c>) reach the server and run, but their reply suffers <paramref name="fault"/>. With
    /// <paramref name="thenRestartFor"/>, a dropped reply is followed at once by <see cref="Restart"/>: a server that
    /// crashed right after the commit.
    /// </summary>
    public void LoseReplies(string marker, ReplyFault fault, int count = 1, TimeSpan? thenRestartFor = null)
    {
        lock (_gate)
        {
            _replyFault = (Encoding.UTF8.GetBytes(marker), fault, count, thenRestartFor);
        }
    }

    /// <summary>Lets replies through again (connections already held stay held).</summary>
    public void StopLosingReplies()
    {
        lock (_gate)
        {
            _replyFault = null;
        }
    }

    /// <summary>
    /// As a PostgreSQL restart looks to its clients: every connection is closed now, and for <paramref name="down"/>
    /// new ones are refused with 57P03 "the database system is starting up", as a server in crash recovery refuses them.
    /// </summary>
    public void Restart(TimeSpan down)
    {
        lock (_gate)
        {
            _downUntil = DateTime.UtcNow + down;
        }

        CloseAll();
    }

    /// <summary>
    /// As a SIGSTOPped postmaster looks: connections already open keep working, new ones are accepted by the kernel
    /// and then never answered. Until <see cref="Resume"/>.
    /// </summary>
    public void StallNewConnections()
    {
        lock (_gate)
        {
            _stalled = true;
        }
    }

    /// <summary>Back to a plain proxy; connections that were left unanswered are closed, as a server that gave up on them.</summary>
    public void Resume()
    {
        List<Link> silent;
        lock (_gate)
        {
            _stalled = false;
            _downUntil = DateTime.MinValue;
            _replyFault = null;
            silent = _links.Where(l => l.Server is null).ToList();
        }

        foreach (var link in silent)
        {
            link.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        CloseAll();
        try
        {
            await _accepting;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stopping.Dispose();
    }

    private void CloseAll()
    {
        List<Link> links;
        lock (_gate)
        {
            links = [.. _links];
            _links.Clear();
        }

        foreach (var link in links)
        {
            link.Close();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            client.NoDelay = true;
            bool down, stalled;
            lock (_gate)
            {
                down = DateTime.UtcNow < _downUntil;
                stalled = _stalled;
            }

            if (stalled)
            {
                // Never answered; closed when the proxy stops.
                var silent = new Link(this, client, null);
                Register(silent);
                continue;
            }

            _ = down ? RefuseAsStartingUpAsync(client) : ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        var server = new TcpClient { NoDelay = true };
        try
        {
            await server.ConnectAsync(_targetHost, _targetPort, _stopping.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            client.Dispose();
            server.Dispose();
            return;
        }

        var link = new Link(this, client, server);
        Register(link);
        await Task.WhenAll(PumpRequestsAsync(link), PumpRepliesAsync(link));
        link.Close();
        lock (_gate)
        {
            _links.Remove(link);
        }
    }

    private void Register(Link link)
    {
        lock (_gate)
        {
            _links.Add(link);
        }
    }

    /// <summary>Client to server, unchanged; a marked request arms its connection's fault before its bytes go on.</summary>
    private async Task PumpRequestsAsync(Link link)
    {
        var buffer = new byte[16 * 1024];
        var tail = Array.Empty<byte>();
        try
        {
            var from = link.Client.GetStream();
            var to = link.Server!.GetStream();
            int read;
            while ((read = await from.ReadAsync(buffer, _stopping.Token)) > 0)
            {
                lock (_gate)
                {
                    if (_replyFault is { } fault && link.Fault is null && Contains(tail, buffer.AsSpan(0, read), fault.Marker))
                    {
                        link.Fault = fault.Fault;
                        link.RestartFor = fault.RestartFor;
                        _replyFault = fault.Remaining > 1 ? fault with { Remaining = fault.Remaining - 1 } : null;
                    }

                    if (_replyFault is { } next)
                    {
                        // A marker split across two reads is still found.
                        var keep = Math.Min(read, next.Marker.Length - 1);
                        tail = buffer.AsSpan(read - keep, keep).ToArray();
                    }
                }

                await to.WriteAsync(buffer.AsMemory(0, read), _stopping.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
        }

        link.Close();
    }

    /// <summary>Server to client, one whole message at a time, unless the connection's fault swallows them.</summary>
    private async Task PumpRepliesAsync(Link link)
    {
        var pending = new List<byte>(16 * 1024);
        var buffer = new byte[16 * 1024];
        try
        {
            var from = link.Server!.GetStream();
            var to = link.Client.GetStream();
            int read;
            while ((read = await from.ReadAsync(buffer, _stopping.Token)) > 0)
            {
                pending.AddRange(buffer.AsSpan(0, read));
                var send = new List<byte>(pending.Count);
                var offset = 0;
                while (pending.Count - offset >= 5)
                {
                    var type = pending[offset];
                    var length = BinaryPrimitives.ReadInt32BigEndian([pending[offset + 1], pending[offset + 2], pending[offset + 3], pending[offset + 4]]);
                    if (pending.Count - offset < 1 + length)
                    {
                        break;
                    }

                    var message = pending.GetRange(offset, 1 + length);
                    offset += 1 + length;
                    if (link.Holding)
                    {
                        continue;
                    }

                    if (link.Fault is not { } fault)
                    {
                        send.AddRange(message);
                        continue;
                    }

                    if (type == (byte)'Z')
                    {
                        // ReadyForQuery: the server has ended the marked request's transaction, and the client has none of it.
                        Interlocked.Increment(ref _lostReplies);
                        if (fault == ReplyFault.Drop)
                        {
                            if (send.Count > 0)
                            {
                                await to.WriteAsync(send.ToArray(), _stopping.Token);
                            }

                            if (link.RestartFor is { } down)
                            {
                                Restart(down);
                            }

                            link.Close();
                            return;
                        }

                        link.Holding = true;
                    }
                }

                pending.RemoveRange(0, offset);
                if (send.Count > 0)
                {
                    await to.WriteAsync(send.ToArray(), _stopping.Token);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
        }

        link.Close();
    }

    /// <summary>Reads the client's startup packet and answers as a server in crash recovery does, then hangs up.</summary>
    private async Task RefuseAsStartingUpAsync(TcpClient client)
    {
        try
        {
            using (client)
            {
                var stream = client.GetStream();
                var length = new byte[4];
                await stream.ReadExactlyAsync(length, _stopping.Token);
                var rest = new byte[BinaryPrimitives.ReadInt32BigEndian(length) - 4];
                await stream.ReadExactlyAsync(rest, _stopping.Token);

                var fields = new MemoryStream();
                foreach (var (code, value) in new[] { ('S', "FATAL"), ('V', "FATAL"), ('C', "57P03"), ('M', "the database system is starting up") })
                {
                    fields.WriteByte((byte)code);
                    fields.Write(Encoding.UTF8.GetBytes(value));
                    fields.WriteByte(0);
                }

                fields.WriteByte(0);
                var message = new byte[5 + fields.Length];
                message[0] = (byte)'E';
                BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + (int)fields.Length);
                fields.ToArray().CopyTo(message, 5);
                await stream.WriteAsync(message, _stopping.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or EndOfStreamException)
        {
        }
    }

    private static bool Contains(byte[] tail, ReadOnlySpan<byte> chunk, byte[] marker)
    {
        if (chunk.IndexOf(marker) >= 0)
        {
            return true;
        }

        if (tail.Length == 0)
        {
            return false;
        }

        var joined = new byte[tail.Length + Math.Min(chunk.Length, marker.Length)];
        tail.CopyTo(joined, 0);
        chunk[..Math.Min(chunk.Length, marker.Length)].CopyTo(joined.AsSpan(tail.Length));
        return joined.AsSpan().IndexOf(marker) >= 0;
    }

    /// <summary>One client connection and, unless it is left unanswered, its connection to the server.</summary>
    private sealed class Link(PostgresProxy proxy, TcpClient client, TcpClient? server)
    {
        private int _closed;
        private int _fault = -1;
        private volatile bool _holding;

        public TcpClient Client { get; } = client;

        public TcpClient? Server { get; } = server;

        /// <summary>How long the server "restarts" after this connection's reply is dropped, if it does.</summary>
        public TimeSpan? RestartFor { get; set; }

        /// <summary>The fault armed by a marked request on this connection (set by the request pump, read by the reply pump).</summary>
        public ReplyFault? Fault
        {
            get => Volatile.Read(ref _fault) is var f and >= 0 ? (ReplyFault)f : null;
            set => Volatile.Write(ref _fault, value is { } f ? (int)f : -1);
        }

        /// <summary>The marked reply has been swallowed and the connection is kept open, silent.</summary>
        public bool Holding
        {
            get => _holding;
            set => _holding = value;
        }

        public void Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 1)
            {
                return;
            }

            // An abortive close (RST) on the client side, as a crashed server's connection looks.
            try
            {
                Client.Client.LingerState = new LingerOption(true, 0);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }

            Client.Dispose();
            Server?.Dispose();
            lock (proxy._gate)
            {
                proxy._links.Remove(this);
            }
        }
    }
}
