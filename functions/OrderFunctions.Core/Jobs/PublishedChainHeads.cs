using System.Text;
using System.Text.Json.Nodes;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// The chain heads last published to the write-once archive container: what the integrity check and the orphan scan
/// compare the database with. Read from the archive, never from the database, so an owner who rewrites history and
/// its hashes cannot rewrite these too. The latest publication is found by listing the day folders from today back;
/// callers that do not need it fresh (the integrity route) share one read for a minute.
/// </summary>
public sealed class PublishedChainHeads(IArchiveStore store, TimeProvider clock)
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(1);
    private const int DaysSearched = 40;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private (DateTimeOffset ReadAt, Publication? Value)? _cached;

    /// <summary>The latest publication, or null when none exists. Throws <see cref="ArchiveStoreException"/> or <see cref="ArchiveIntegrityException"/>.</summary>
    public async Task<Publication?> LatestAsync(bool fresh, CancellationToken cancellationToken)
    {
        if (!fresh && _cached is { } cached && clock.GetUtcNow() - cached.ReadAt < CacheFor)
        {
            return cached.Value;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!fresh && _cached is { } again && clock.GetUtcNow() - again.ReadAt < CacheFor)
            {
                return again.Value;
            }

            var latest = await ReadLatestAsync(cancellationToken);
            _cached = (clock.GetUtcNow(), latest);
            return latest;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A publication just written by this process is the latest: no need to read it back again.</summary>
    internal void Remember(Publication publication) => _cached = (clock.GetUtcNow(), publication);

    private async Task<Publication?> ReadLatestAsync(CancellationToken cancellationToken)
    {
        var today = clock.GetUtcNow();
        string? manifestName = null;
        for (var day = 0; day < DaysSearched && manifestName is null; day++)
        {
            manifestName = await LastManifestAsync(ChainHeadManifest.DayPrefix(today.AddDays(-day)), cancellationToken);
        }

        // Nothing for weeks: the whole history, once.
        manifestName ??= await LastManifestAsync(ChainHeadManifest.Prefix, cancellationToken);
        if (manifestName is null)
        {
            return null;
        }

        var manifest = ChainHeadManifest.Parse(await store.ReadAsync(manifestName, cancellationToken)
                                               ?? throw new ArchiveIntegrityException($"manifest {manifestName} was listed but cannot be read"), manifestName);
        var compressed = await store.ReadAsync(manifest.DataBlobName, cancellationToken)
                         ?? throw new ArchiveIntegrityException($"chain heads {manifest.DataBlobName} are missing");
        var content = ArchiveManifest.Gunzip(compressed, manifest.DataBlobName);
        var lines = Encoding.UTF8.GetString(content).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (ArchiveManifest.Sha256Hex(content) != manifest.Sha256 || lines.Length != manifest.Accounts)
        {
            throw new ArchiveIntegrityException($"chain heads {manifest.DataBlobName} do not match their manifest");
        }

        var heads = new Dictionary<Guid, string>(lines.Length);
        foreach (var line in lines)
        {
            heads[Guid.Parse((string)JsonNode.Parse(line)!["user_id"]!)] = line;
        }

        return new Publication(manifest.DataBlobName, manifest.PublishedAt, heads);
    }

    private async Task<string?> LastManifestAsync(string prefix, CancellationToken cancellationToken)
    {
        string? last = null;
        await foreach (var name in store.ListAsync(prefix, cancellationToken))
        {
            if (ChainHeadManifest.IsManifestName(name) && (last is null || string.CompareOrdinal(name, last) > 0))
            {
                last = name;
            }
        }

        return last;
    }

    /// <summary>One publication: each account's heads as its chain_heads() line (JSON text).</summary>
    public sealed record Publication(string BlobName, DateTimeOffset PublishedAt, IReadOnlyDictionary<Guid, string> Heads)
    {
        /// <summary>All heads as one JSON array, for trading.published_head_mismatches().</summary>
        public string HeadsJson() => "[" + string.Join(",", Heads.Values) + "]";
    }
}
