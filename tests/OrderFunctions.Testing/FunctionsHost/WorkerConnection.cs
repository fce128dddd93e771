using System.Collections.Concurrent;
using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using OrderFunctions.Testing.FunctionsHost.Rpc;

namespace OrderFunctions.Testing.FunctionsHost;

/// <summary>
/// The host's end of one worker's FunctionRpc.EventStream: the worker dials in and sends StartStream; requests go out
/// through one writer, and each answer completes the request that carries its request id (init, metadata, loads)
/// or its invocation id (invocations). RpcLog messages go to the <see cref="WorkerLog"/>.
/// </summary>
internal sealed class WorkerConnection(string workerId, WorkerLog log)
{
    private readonly Channel<StreamingMessage> _outbound = Channel.CreateUnbounded<StreamingMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, TaskCompletionSource<StreamingMessage>> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<InvocationResponse>> _invocations = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _broken;

    /// <summary>Completes when the worker has opened the stream with StartStream for this worker id.</summary>
    public Task Started => _started.Task;

    /// <summary>Completes when the stream is gone (worker exited, terminated or broke the protocol).</summary>
    public Task Ended => _ended.Task;

    /// <summary>Why the connection cannot be used any more, or null.</summary>
    public string? Broken => _broken;

    /// <summary>Sends a request and waits for the response with the same request id.</summary>
    public async Task<StreamingMessage> RequestAsync(StreamingMessage request, CancellationToken cancellationToken)
    {
        request.RequestId = Guid.NewGuid().ToString();
        var answer = new TaskCompletionSource<StreamingMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests[request.RequestId] = answer;
        try
        {
            Send(request);
            return await answer.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            _requests.TryRemove(request.RequestId, out _);
        }
    }

    /// <summary>Sends an invocation and waits for its response; a cancelled wait sends InvocationCancel.</summary>
    public async Task<InvocationResponse> InvokeAsync(InvocationRequest invocation, CancellationToken cancellationToken)
    {
        var answer = new TaskCompletionSource<InvocationResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        _invocations[invocation.InvocationId] = answer;
        try
        {
            Send(new StreamingMessage { RequestId = Guid.NewGuid().ToString(), InvocationRequest = invocation });
            try
            {
                return await answer.Task.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && _broken is null)
            {
                // The client went away: the host tells the worker, whose CancellationToken then fires.
                Send(new StreamingMessage { RequestId = Guid.NewGuid().ToString(), InvocationCancel = new InvocationCancel { InvocationId = invocation.InvocationId } });
                throw;
            }
        }
        finally
        {
            _invocations.TryRemove(invocation.InvocationId, out _);
        }
    }

    /// <summary>Queues a message without waiting for an answer (WorkerTerminate, InvocationCancel).</summary>
    public void Send(StreamingMessage message)
    {
        if (_broken is { } reason)
        {
            throw new InvalidOperationException("the worker connection is gone: " + reason);
        }

        _outbound.Writer.TryWrite(message);
    }

    /// <summary>The gRPC call: runs for the life of the worker.</summary>
    public async Task RunAsync(IAsyncStreamReader<StreamingMessage> requests, IServerStreamWriter<StreamingMessage> responses, CancellationToken cancellationToken)
    {
        if (!await requests.MoveNext(cancellationToken))
        {
            return;
        }

        var first = requests.Current;
        if (first.ContentCase != StreamingMessage.ContentOneofCase.StartStream || first.StartStream.WorkerId != workerId)
        {
            Fail($"the worker's first message was {first.ContentCase} for worker '{first.StartStream?.WorkerId}', not StartStream for '{workerId}'");
            return;
        }

        _started.TrySetResult();
        var writer = WriteAllAsync(responses, cancellationToken);
        try
        {
            while (await requests.MoveNext(cancellationToken))
            {
                Dispatch(requests.Current);
            }

            Fail("the worker closed its stream");
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or Grpc.Core.RpcException)
        {
            Fail("the stream broke: " + e.Message);
        }
        finally
        {
            _outbound.Writer.TryComplete();
            await writer;
        }
    }

    /// <summary>Fails every waiting request; later sends throw with the reason.</summary>
    public void Fail(string reason)
    {
        _broken ??= reason;
        _started.TrySetException(new InvalidOperationException(reason));
        foreach (var request in _requests.Values)
        {
            request.TrySetException(new InvalidOperationException(reason));
        }

        foreach (var invocation in _invocations.Values)
        {
            invocation.TrySetException(new InvalidOperationException(reason));
        }

        _ended.TrySetResult();
    }

    private void Dispatch(StreamingMessage message)
    {
        switch (message.ContentCase)
        {
            case StreamingMessage.ContentOneofCase.RpcLog:
                var rpcLog = message.RpcLog;
                log.Add(rpcLog.Level.ToString(), rpcLog.Category, rpcLog.Message,
                    rpcLog.Exception is null ? null : $"{rpcLog.Exception.Type}: {rpcLog.Exception.Message}\n{rpcLog.Exception.StackTrace}");
                break;
            case StreamingMessage.ContentOneofCase.InvocationResponse:
                if (_invocations.TryGetValue(message.InvocationResponse.InvocationId, out var invocation))
                {
                    invocation.TrySetResult(message.InvocationResponse);
                }

                break;
            default:
                if (message.CalculateSize() == 0)
                {
                    // Worker 2.52 sends one empty message as it shuts down after WorkerTerminate: nothing to act on.
                    break;
                }

                if (_requests.TryGetValue(message.RequestId, out var request))
                {
                    request.TrySetResult(message);
                }
                else
                {
                    log.Add("Warning", "FunctionsHost", $"unexpected {Describe(message)} for request {message.RequestId}");
                }

                break;
        }
    }

    /// <summary>The message's kind; for one this host's protocol subset does not define, its field numbers on the wire.</summary>
    private static string Describe(StreamingMessage message)
    {
        if (message.ContentCase != StreamingMessage.ContentOneofCase.None)
        {
            return message.ContentCase.ToString();
        }

        var fields = new List<int>();
        var input = new CodedInputStream(message.ToByteArray());
        for (var tag = input.ReadTag(); tag != 0; tag = input.ReadTag())
        {
            fields.Add(WireFormat.GetTagFieldNumber(tag));
            input.SkipLastField();
        }

        return $"message with field(s) {string.Join(", ", fields)} (not in this host's protocol subset)";
    }

    private async Task WriteAllAsync(IServerStreamWriter<StreamingMessage> responses, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in _outbound.Reader.ReadAllAsync(cancellationToken))
            {
                await responses.WriteAsync(message, cancellationToken);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException or Grpc.Core.RpcException)
        {
            Fail("writing to the worker failed: " + e.Message);
        }
    }
}

/// <summary>The FunctionRpc service: hands the one expected worker's stream to its <see cref="WorkerConnection"/>.</summary>
internal sealed class FunctionRpcService(WorkerConnection connection) : FunctionRpc.FunctionRpcBase
{
    public override Task EventStream(IAsyncStreamReader<StreamingMessage> requestStream, IServerStreamWriter<StreamingMessage> responseStream,
        ServerCallContext context) =>
        connection.RunAsync(requestStream, responseStream, context.CancellationToken);
}
