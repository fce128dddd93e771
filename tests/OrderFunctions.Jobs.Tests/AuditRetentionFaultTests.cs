using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Jobs.Tests.Support;

namespace OrderFunctions.Jobs.Tests;

/// <summary>Audit retention when it is interrupted or storage is down: nothing is lost and a rerun duplicates nothing.</summary>
public sealed class AuditRetentionFaultTests : IAsyncLifetime
{
    private static readonly MaintenanceSettings Settings = new() { RetentionBatchSize = 2 };

    private JobsDatabase _db = null!;
    private ArchiveContainer _archive = null!;

    public async Task InitializeAsync()
    {
        _db = await JobsDatabase.CreateAsync();
        _archive = await ArchiveContainer.CreateAsync();
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private AuditRetentionJob Job(IArchiveStore store) =>
        new(_db.Orders, store, Settings, TimeProvider.System, NullLogger<AuditRetentionJob>.Instance);

    [Fact]
    public async Task Audit_retention_loses_nothing_when_it_stops_between_upload_and_delete_and_a_rerun_uploads_nothing_twice()
    {
        // Arrange
        var oldIds = await SeedOldAuditRowsAsync();
        var crashing = new CrashAfterUploadStore(_archive.Store(), ".manifest.json");

        // Act: the first run stops right after uploading its first batch (data and manifest)
        var interrupted = await Job(crashing).RunAsync("test", CancellationToken.None);

        // Assert: no row lost, nothing recorded, the batch's two blobs are in storage
        Assert.Equal(JobRun.Failed, interrupted.Status);
        Assert.Contains("injected crash", interrupted.Error, StringComparison.Ordinal);
        Assert.Equal(oldIds, await _db.IdsAsync(Tables.BalanceAuditLog));
        Assert.Empty(await _db.ArchivesAsync());
        var uploaded = (await _archive.BlobsAsync()).Select(b => (b.Name, b.Properties.ETag)).ToList();
        Assert.Equal(2, uploaded.Count);

        // Act: the rerun finishes the uploaded batch instead of uploading it again, then does the rest
        var store = new ForwardingStore(_archive.Store());
        var rerun = await Job(store).RunAsync("test", CancellationToken.None);

        // Assert
        Assert.Equal(JobRun.Succeeded, rerun.Status);
        Assert.Empty(await _db.IdsAsync(Tables.BalanceAuditLog));
        var archives = await _db.ArchivesAsync();
        Assert.Equal(oldIds.Count, archives.Sum(a => a.RowCount));
        Assert.Equal(archives.Count * 2, (await _archive.BlobsAsync()).Count);
        Assert.Equal((archives.Count - 1) * 2, store.Uploads);
        var blobs = (await _archive.BlobsAsync()).ToDictionary(b => b.Name, b => b.Properties.ETag);
        Assert.All(uploaded, u => Assert.Equal(u.ETag, blobs[u.Name]));
        var recovered = rerun.Findings[Tables.BalanceAuditLog]!["batches"]![0]!;
        Assert.True((bool?)recovered["recovered"]);
        Assert.Equal(uploaded.Single(u => u.Name.EndsWith(".ndjson.gz", StringComparison.Ordinal)).Name, (string?)recovered["blob_name"]);
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.ledger_mismatches()"));
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.balance_audit_chain_breaks()"));
    }

    [Fact]
    public async Task Audit_retention_reuses_a_verified_blob_that_an_interrupted_run_uploaded_without_its_manifest()
    {
        var oldIds = await SeedOldAuditRowsAsync();
        var interrupted = await Job(new CrashAfterUploadStore(_archive.Store(), ".ndjson.gz")).RunAsync("test", CancellationToken.None);
        var dataBlob = Assert.Single(await _archive.BlobsAsync());

        var store = new ForwardingStore(_archive.Store());
        var rerun = await Job(store).RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Failed, interrupted.Status);
        Assert.Equal(JobRun.Succeeded, rerun.Status);
        Assert.Empty(await _db.IdsAsync(Tables.BalanceAuditLog));
        var archives = await _db.ArchivesAsync();
        Assert.Equal(oldIds.Count, archives.Sum(a => a.RowCount));
        Assert.Equal(archives.Count * 2, (await _archive.BlobsAsync()).Count);
        Assert.Equal(archives.Count * 2 - 1, store.Uploads);
        var first = rerun.Findings[Tables.BalanceAuditLog]!["batches"]![0]!;
        Assert.Equal(dataBlob.Name, (string?)first["blob_name"]);
        Assert.True((bool?)first["reused_blob"]);
        Assert.Equal(dataBlob.Properties.ETag, (await _archive.BlobsAsync()).Single(b => b.Name == dataBlob.Name).Properties.ETag);
    }

    [Fact]
    public async Task Audit_retention_finishes_an_uploaded_batch_first_even_when_the_batch_size_has_changed_since()
    {
        // Arrange: an interrupted run with batches of 2 left rows 1-2 uploaded but not recorded
        var oldIds = await SeedOldAuditRowsAsync();
        await Job(new CrashAfterUploadStore(_archive.Store(), ".manifest.json")).RunAsync("test", CancellationToken.None);
        var larger = new AuditRetentionJob(_db.Orders, _archive.Store(), Settings with { RetentionBatchSize = 3 }, TimeProvider.System,
            NullLogger<AuditRetentionJob>.Instance);

        // Act: batches of 3 would otherwise start with rows 1-3, a different blob
        var rerun = await larger.RunAsync("test", CancellationToken.None);

        // Assert: 1-2 from the uploaded blob, then 3-5 anew
        Assert.Equal(JobRun.Succeeded, rerun.Status);
        Assert.Equal([(oldIds[0], oldIds[1]), (oldIds[2], oldIds[4])], (await _db.ArchivesAsync()).Select(a => (a.FirstId, a.LastId)));
        Assert.Equal(4, (await _archive.BlobsAsync()).Count);
        Assert.Empty(await _db.IdsAsync(Tables.BalanceAuditLog));
    }

    [Fact]
    public async Task Audit_retention_deletes_nothing_and_records_a_failed_run_when_blob_storage_is_unreachable()
    {
        // Arrange
        var oldIds = await SeedOldAuditRowsAsync();

        // Act
        var run = await Job(ArchiveContainer.UnreachableStore()).RunAsync("test", CancellationToken.None);

        // Assert: failed, recorded, nothing deleted, no secret in the record
        Assert.Equal(JobRun.Failed, run.Status);
        Assert.Contains("blob storage is unreachable", run.Error, StringComparison.Ordinal);
        Assert.Equal(oldIds, await _db.IdsAsync(Tables.BalanceAuditLog));
        Assert.Empty(await _db.ArchivesAsync());
        var stored = await _db.RunAsync(run.RunId);
        Assert.Equal((JobRun.Failed, run.Error), (stored.Status, stored.Error));
        Assert.NotNull(stored.FinishedAt);
        Assert.DoesNotContain("AccountKey", stored.Error + stored.Findings, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Convert.ToBase64String("not-the-real-key-but-still-secret"u8.ToArray()), stored.Error + stored.Findings, StringComparison.Ordinal);

        // Act: storage is back
        var next = await Job(_archive.Store()).RunAsync("test", CancellationToken.None);

        // Assert
        Assert.Equal(JobRun.Succeeded, next.Status);
        Assert.Empty(await _db.IdsAsync(Tables.BalanceAuditLog));
        Assert.Equal(oldIds.Count, (await _db.ArchivesAsync()).Sum(a => a.RowCount));
    }

    [Fact]
    public async Task Audit_retention_records_a_failed_run_naming_the_setting_when_archive_storage_is_not_configured()
    {
        await SeedOldAuditRowsAsync();
        var unconfigured = new BlobArchiveStore(new ArchiveStorageSettings { ConnectionString = "", ServiceUri = "", ContainerName = "audit-archive" });

        var run = await Job(unconfigured).RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Failed, run.Status);
        Assert.Equal("archive storage is not configured: set ArchiveStorage__ConnectionString or ArchiveStorage__serviceUri", run.Error);
    }

    /// <summary>Five audit rows (deposits and trades of one trader), all past the 7-year retention.</summary>
    private async Task<List<long>> SeedOldAuditRowsAsync()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        await _db.DepositAsync(user, 10m);
        await _db.ExecutedOrderAsync(user, symbol, "sell", 2m);
        var ids = await _db.IdsAsync(Tables.BalanceAuditLog);
        Assert.Equal(5, ids.Count);
        await _db.AgeRowsAsync(Tables.BalanceAuditLog, ids[^1], TimeSpan.FromDays(8 * 366));
        return ids;
    }
}
