namespace OrderFunctions.Core.Jobs;

/// <summary>
/// Write-once storage for audit archives (Blob Storage in Azure, Azurite locally). The container may carry a
/// time-based immutability policy, so nothing here overwrites or deletes a blob.
/// </summary>
public interface IArchiveStore
{
    /// <summary>Makes the store ready for use (creates the container where the store is allowed to).</summary>
    Task PrepareAsync(CancellationToken cancellationToken);

    /// <summary>Writes a new blob; returns false, writing nothing, when a blob of that name already exists.</summary>
    Task<bool> CreateAsync(string name, byte[] content, string contentType, CancellationToken cancellationToken);

    /// <summary>The content of a blob, or null when there is none of that name.</summary>
    Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken);

    /// <summary>The names of the blobs that start with <paramref name="prefix"/>, in name order.</summary>
    IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken cancellationToken);
}
