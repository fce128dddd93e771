using OrderFunctions.Core.Jobs;

namespace OrderFunctions.Jobs.Tests.Support;

/// <summary>Passes everything to the real store; counts uploads.</summary>
internal class ForwardingStore(IArchiveStore inner) : IArchiveStore
{
    private int _uploads;

    public int Uploads => _uploads;

    public virtual Task PrepareAsync(CancellationToken cancellationToken) => inner.PrepareAsync(cancellationToken);

    public virtual async Task<bool> CreateAsync(string name, byte[] content, string contentType, CancellationToken cancellationToken)
    {
        var created = await inner.CreateAsync(name, content, contentType, cancellationToken);
        if (created)
        {
            Interlocked.Increment(ref _uploads);
        }

        return created;
    }

    public virtual Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken) => inner.ReadAsync(name, cancellationToken);

    public virtual IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken) => inner.ListAsync(prefix, cancellationToken);
}

/// <summary>The process "crashes" right after the first upload of a blob whose name ends with <paramref name="suffix"/>.</summary>
internal sealed class CrashAfterUploadStore(IArchiveStore inner, string suffix) : ForwardingStore(inner)
{
    public override async Task<bool> CreateAsync(string name, byte[] content, string contentType, CancellationToken cancellationToken)
    {
        var created = await base.CreateAsync(name, content, contentType, cancellationToken);
        if (created && name.EndsWith(suffix, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"injected crash after uploading {name}");
        }

        return created;
    }
}

/// <summary>Holds every upload until <c>gate</c> completes, so a run can be kept in progress (holding its lock) on purpose.</summary>
internal sealed class GatedStore(IArchiveStore inner, Task gate) : ForwardingStore(inner)
{
    private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a run reached its first upload and is waiting at the gate.</summary>
    public Task Waiting => _waiting.Task;

    public override async Task<bool> CreateAsync(string name, byte[] content, string contentType, CancellationToken cancellationToken)
    {
        _waiting.TrySetResult();
        await gate.WaitAsync(cancellationToken);
        return await base.CreateAsync(name, content, contentType, cancellationToken);
    }
}
