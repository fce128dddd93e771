using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Data;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// Publishes every account's chain heads (its execution log's last seq and row_hash, its audit chain's last id and the
/// balance and margin it left) to the write-once archive container, so verification can compare the database with
/// something its owner cannot rewrite. Data first, then its manifest, each written once and read back; a publication
/// whose manifest is missing is ignored by readers, and the next run publishes afresh.
/// </summary>
public sealed partial class ChainHeadsJob(
    OrdersDatabase database,
    IArchiveStore store,
    PublishedChainHeads published,
    ILogger<ChainHeadsJob> logger) : IMaintenanceJob
{
    /// <summary>The job's advisory lock key (pg_try_advisory_xact_lock).</summary>
    internal const long LockKey = 0x4F72_6465_7246_0003;

    private const string DataContentType = "application/gzip";
    private const string ManifestContentType = "application/json";

    // One statement per result, one transaction: the heads and their instant come from the same snapshot.
    private const string HeadsSql = """
        SELECT now();
        SELECT line FROM trading.chain_heads();
        """;

    public string Name => JobNames.ChainHeads;

    public Task<JobRun> RunAsync(string trigger, CancellationToken cancellationToken) =>
        new MaintenanceRuns(database, logger).RunExclusiveAsync(Name, LockKey, trigger, PublishAsync, cancellationToken);

    private async Task<string?> PublishAsync(long runId, JsonObject findings, CancellationToken cancellationToken)
    {
        await store.PrepareAsync(cancellationToken);
        var (publishedAt, lines) = await database.QueryAsync(DbRole.Maintenance, null, HeadsSql, null, Writes.Nothing, async grid =>
            (await grid.ReadSingleAsync<DateTime>(), (await grid.ReadAsync<string>()).AsList()), cancellationToken);

        var content = ArchiveManifest.Ndjson(lines);
        var manifest = new ChainHeadManifest(new DateTimeOffset(publishedAt, TimeSpan.Zero), runId, lines.Count, ArchiveManifest.Sha256Hex(content));
        if (!await store.CreateAsync(manifest.DataBlobName, ArchiveManifest.Gzip(content), DataContentType, cancellationToken)
            || !await store.CreateAsync(manifest.ManifestBlobName, manifest.ToUtf8(), ManifestContentType, cancellationToken))
        {
            // Names carry the run id: only another writer of this very run could have taken them.
            throw new ArchiveIntegrityException($"chain heads {manifest.DataBlobName} already exist");
        }

        var readBack = ArchiveManifest.Gunzip(await store.ReadAsync(manifest.DataBlobName, cancellationToken)
                                              ?? throw new ArchiveIntegrityException($"chain heads {manifest.DataBlobName} are missing after upload"),
            manifest.DataBlobName);
        if (ArchiveManifest.Sha256Hex(readBack) != manifest.Sha256
            || ChainHeadManifest.Parse(await store.ReadAsync(manifest.ManifestBlobName, cancellationToken) ?? [], manifest.ManifestBlobName) != manifest)
        {
            throw new ArchiveIntegrityException($"chain heads {manifest.DataBlobName} read back differently than written");
        }

        published.Remember(new PublishedChainHeads.Publication(manifest.DataBlobName, manifest.PublishedAt,
            lines.ToDictionary(l => Guid.Parse((string)JsonNode.Parse(l)!["user_id"]!))));
        findings["blob_name"] = manifest.DataBlobName;
        findings["manifest_blob_name"] = manifest.ManifestBlobName;
        findings["published_at"] = Http.Json.Format(manifest.PublishedAt.UtcDateTime);
        findings["accounts"] = manifest.Accounts;
        findings["sha256"] = manifest.Sha256;
        LogPublished(manifest.Accounts, manifest.DataBlobName);
        return null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Published the chain heads of {Accounts} accounts as {BlobName}")]
    private partial void LogPublished(int accounts, string blobName);
}
