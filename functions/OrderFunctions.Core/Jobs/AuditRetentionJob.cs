using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Logging;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Data;
using OrderFunctions.Core.Http;

namespace OrderFunctions.Core.Jobs;

/// <summary>
/// Moves balance_audit_log and error_log rows past their retention (execution_logs are kept for ever) to the
/// archive store, batch by batch: gzipped NDJSON and a manifest are uploaded, read back and verified, and only
/// then does trading.delete_archived_audit_rows recompute count and hash from the rows, record the archive and the
/// ledger checkpoints and delete the rows, in one transaction.
/// Crash safety: blob names follow from the batch, blobs are written once and never overwritten or deleted,
/// and every run first finishes the batches an interrupted run uploaded but did not record.
/// </summary>
public sealed partial class AuditRetentionJob(
    OrdersDatabase database,
    IArchiveStore store,
    MaintenanceSettings settings,
    TimeProvider clock,
    ILogger<AuditRetentionJob> logger) : IMaintenanceJob
{
    /// <summary>The job's advisory lock key (pg_try_advisory_xact_lock).</summary>
    internal const long LockKey = 0x4F72_6465_7246_0002;

    internal const string BalanceAuditLog = "balance_audit_log";
    internal const string ErrorLog = "error_log";

    private const string DataContentType = "application/gzip";
    private const string ManifestContentType = "application/json";

    // The youngest cutoff the database allows (its retention floor, an owner-only setting): a configured retention
    // shorter than the floor is raised to it, since delete_archived_audit_rows would refuse the batch.
    private const string FloorCutoffSql = """
        SELECT trading.retention_floor_cutoff(@Table);
        """;

    private const string LastArchivedSql = """
        SELECT coalesce(max(last_id), 0) FROM trading.audit_archives WHERE table_name = @Table;
        """;

    // The next batch of a table; trading.audit_rows_to_archive ends it before the first row not yet past the cutoff.
    private const string BatchSql = """
        SELECT r.id, r.line FROM trading.audit_rows_to_archive(@Table, @AfterId, @Cutoff, @Limit) r ORDER BY r.id;
        """;

    private const string ArchiveSql = """
        SELECT trading.delete_archived_audit_rows(@RunId, @Table, @FirstId, @LastId, @Cutoff, @RowCount, @Sha256, @BlobName)::text;
        """;

    public string Name => JobNames.AuditRetention;

    public Task<JobRun> RunAsync(string trigger, CancellationToken cancellationToken) =>
        new MaintenanceRuns(database, logger).RunExclusiveAsync(Name, LockKey, trigger, ArchiveAsync, cancellationToken);

    private async Task<string?> ArchiveAsync(long runId, JsonObject findings, CancellationToken cancellationToken)
    {
        await store.PrepareAsync(cancellationToken);
        // Whole seconds: the cutoff written into a manifest must read back as exactly the instant the database
        // compared against, so that a later run finishing the batch selects the same rows.
        var now = clock.GetUtcNow();
        now = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        var counts = new JsonObject();
        var errors = new JsonObject();
        foreach (var (table, days) in new[] { (BalanceAuditLog, settings.AuditLogRetentionDays), (ErrorLog, settings.ErrorLogRetentionDays) })
        {
            var report = new TableReport(table, now.AddDays(-days), days);
            findings[table] = report.Node;
            try
            {
                var floor = await database.QueryAsync(DbRole.Maintenance, null, FloorCutoffSql, new { Table = table }, Writes.Nothing,
                    grid => grid.ReadSingleAsync<DateTime>(), cancellationToken);
                report.ApplyFloor(new DateTimeOffset(floor.Ticks - floor.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero));
                if (report.RaisedToFloor)
                {
                    LogRaisedToFloor(table, days, report.Cutoff);
                }

                await ArchiveTableAsync(runId, report, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Nothing of the failed batch was deleted; the next run finishes or redoes it.
                errors[table] = ErrorText.Describe(e);
                LogTableFailed(e, table, runId);
            }

            counts[table] = report.ArchivedRows;
        }

        findings["counts"] = counts;
        if (errors.Count == 0)
        {
            return null;
        }

        findings["errors"] = errors;
        return "archiving failed for " + string.Join(", ", errors.Select(e => $"{e.Key} ({(string?)e.Value})"));
    }

    private async Task ArchiveTableAsync(long runId, TableReport report, CancellationToken cancellationToken)
    {
        var table = report.Table;
        var lastArchived = await database.QueryAsync(DbRole.Maintenance, null, LastArchivedSql, new { Table = table }, Writes.Nothing,
            grid => grid.ReadSingleAsync<long>(), cancellationToken);

        // 1. Batches an interrupted run uploaded but did not record: verify and record them, never upload them again.
        foreach (var (name, _) in await UnrecordedManifestsAsync(table, lastArchived, cancellationToken))
        {
            var bytes = await store.ReadAsync(name, cancellationToken)
                        ?? throw new ArchiveIntegrityException($"manifest {name} was listed but cannot be read");
            var manifest = ArchiveManifest.Parse(bytes, name);
            if (manifest.Table != table || manifest.ManifestBlobName != name || manifest.FirstId <= lastArchived)
            {
                throw new ArchiveIntegrityException($"manifest {name} does not describe the batch its name claims");
            }

            await VerifyAsync(manifest, cancellationToken);
            await RecordAsync(runId, manifest, report, recovered: true, reusedBlob: true, cancellationToken);
            LogRecovered(manifest.DataBlobName, manifest.RowCount);
            lastArchived = manifest.LastId;
        }

        // 2. New batches, in id order.
        while (true)
        {
            var rows = (await database.QueryAsync(DbRole.Maintenance, null, BatchSql,
                new { Table = table, AfterId = lastArchived, Cutoff = report.Cutoff, Limit = settings.RetentionBatchSize }, Writes.Nothing,
                grid => grid.ReadAsync<(long Id, string Line)>(), cancellationToken)).AsList();
            if (rows.Count == 0)
            {
                return;
            }

            var content = ArchiveManifest.Ndjson(rows.Select(r => r.Line));
            var manifest = new ArchiveManifest(table, rows[0].Id, rows[^1].Id, rows.Count, ArchiveManifest.Sha256Hex(content), report.Cutoff,
                clock.GetUtcNow());

            var reusedBlob = !await store.CreateAsync(manifest.DataBlobName, ArchiveManifest.Gzip(content), DataContentType, cancellationToken);
            if (reusedBlob)
            {
                // Uploaded by an interrupted run: usable only if it holds exactly these rows (it cannot be replaced).
                await VerifyDataAsync(manifest, cancellationToken);
            }

            if (!await store.CreateAsync(manifest.ManifestBlobName, manifest.ToUtf8(), ManifestContentType, cancellationToken))
            {
                var existing = ArchiveManifest.Parse(await store.ReadAsync(manifest.ManifestBlobName, cancellationToken) ?? [], manifest.ManifestBlobName);
                if (!existing.DescribesSameRows(manifest))
                {
                    throw new ArchiveIntegrityException($"manifest {manifest.ManifestBlobName} already exists and describes other rows");
                }

                manifest = existing;
                reusedBlob = true;
            }

            await VerifyAsync(manifest, cancellationToken);
            await RecordAsync(runId, manifest, report, recovered: false, reusedBlob, cancellationToken);
            lastArchived = manifest.LastId;
        }
    }

    /// <summary>Manifests past the last recorded archive of the table, in id order.</summary>
    private async Task<List<(string Name, long FirstId)>> UnrecordedManifestsAsync(string table, long lastArchived, CancellationToken cancellationToken)
    {
        var manifests = new List<(string, long)>();
        await foreach (var name in store.ListAsync(ArchiveManifest.Prefix(table), cancellationToken))
        {
            if (ArchiveManifest.TryParseManifestName(table, name, out var firstId, out _) && firstId > lastArchived)
            {
                manifests.Add((name, firstId));
            }
        }

        manifests.Sort((a, b) => a.Item2.CompareTo(b.Item2));
        return manifests;
    }

    /// <summary>Reads both blobs back: the stored manifest must be this one and the data must hold its rows.</summary>
    private async Task VerifyAsync(ArchiveManifest manifest, CancellationToken cancellationToken)
    {
        var stored = await store.ReadAsync(manifest.ManifestBlobName, cancellationToken)
                     ?? throw new ArchiveIntegrityException($"manifest {manifest.ManifestBlobName} is missing after upload");
        var storedManifest = ArchiveManifest.Parse(stored, manifest.ManifestBlobName);
        if (!storedManifest.DescribesSameRows(manifest) || storedManifest.Cutoff != manifest.Cutoff)
        {
            throw new ArchiveIntegrityException($"manifest {manifest.ManifestBlobName} read back differs from the one uploaded");
        }

        await VerifyDataAsync(manifest, cancellationToken);
    }

    private async Task VerifyDataAsync(ArchiveManifest manifest, CancellationToken cancellationToken)
    {
        var name = manifest.DataBlobName;
        var compressed = await store.ReadAsync(name, cancellationToken)
                         ?? throw new ArchiveIntegrityException($"archive {name} is missing");
        var content = ArchiveManifest.Gunzip(compressed, name);
        var sha256 = ArchiveManifest.Sha256Hex(content);
        var lines = content.AsSpan().Count((byte)'\n');
        if (sha256 != manifest.Sha256 || lines != manifest.RowCount || content.Length == 0 || content[^1] != (byte)'\n')
        {
            throw new ArchiveIntegrityException(
                $"archive {name} holds {lines} rows with sha256 {sha256}, its manifest says {manifest.RowCount} rows with sha256 {manifest.Sha256}");
        }

        var text = Encoding.UTF8.GetString(content);
        var first = FirstLineId(text);
        var last = FirstLineId(text[(text.LastIndexOf('\n', text.Length - 2) + 1)..]);
        if (first != manifest.FirstId || last != manifest.LastId)
        {
            throw new ArchiveIntegrityException($"archive {name} holds ids {first}-{last}, its manifest says {manifest.FirstId}-{manifest.LastId}");
        }
    }

    private static long? FirstLineId(string text)
    {
        var end = text.IndexOf('\n', StringComparison.Ordinal);
        try
        {
            return (long?)JsonNode.Parse(end < 0 ? text : text[..end])?["id"];
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    /// <summary>delete_archived_audit_rows: recomputes count and hash from the rows, records the archive and deletes the rows.</summary>
    private async Task RecordAsync(long runId, ArchiveManifest manifest, TableReport report, bool recovered, bool reusedBlob,
        CancellationToken cancellationToken)
    {
        // Not repeated after a lost connection: whether it committed is then unknown, and the next run knows
        // from audit_archives.
        var envelope = await database.CallAsync(DbRole.Maintenance, null, ArchiveSql, new
        {
            RunId = runId,
            manifest.Table,
            manifest.FirstId,
            manifest.LastId,
            manifest.Cutoff,
            manifest.RowCount,
            manifest.Sha256,
            BlobName = manifest.DataBlobName,
        }, Writes.NotIdempotently, cancellationToken);
        if ((bool?)envelope["success"] != true)
        {
            throw new ArchiveIntegrityException(
                $"delete_archived_audit_rows refused {manifest.DataBlobName}: {(string?)envelope["error_code"]}: {(string?)envelope["error_message"]}");
        }

        var deleted = (int?)envelope["data"]?["deleted"] ?? 0;
        report.Add(new JsonObject
        {
            ["blob_name"] = manifest.DataBlobName,
            ["manifest_blob_name"] = manifest.ManifestBlobName,
            ["first_id"] = manifest.FirstId,
            ["last_id"] = manifest.LastId,
            ["row_count"] = manifest.RowCount,
            ["sha256"] = manifest.Sha256,
            ["cutoff"] = Json.Format(manifest.Cutoff.UtcDateTime),
            ["archive_id"] = (long?)envelope["data"]?["archive_id"],
            ["checkpoints"] = (int?)envelope["data"]?["checkpoints"],
            ["recovered"] = recovered,
            ["reused_blob"] = reusedBlob,
        }, deleted);
        LogArchived(deleted, manifest.Table, manifest.FirstId, manifest.LastId, manifest.DataBlobName);
    }

    private sealed class TableReport
    {
        private readonly JsonArray _batches = [];

        public TableReport(string table, DateTimeOffset cutoff, int retentionDays)
        {
            Table = table;
            Cutoff = cutoff;
            Node = new JsonObject
            {
                ["retention_days"] = retentionDays,
                ["cutoff"] = Json.Format(cutoff.UtcDateTime),
                ["archived_rows"] = 0,
                ["batches"] = _batches,
            };
        }

        public string Table { get; }

        public DateTimeOffset Cutoff { get; private set; }

        public bool RaisedToFloor { get; private set; }

        /// <summary>Moves the cutoff back to the database's floor cutoff when the configured one is younger.</summary>
        public void ApplyFloor(DateTimeOffset floorCutoff)
        {
            Node["floor_cutoff"] = Json.Format(floorCutoff.UtcDateTime);
            if (floorCutoff < Cutoff)
            {
                Cutoff = floorCutoff;
                RaisedToFloor = true;
                Node["cutoff"] = Json.Format(floorCutoff.UtcDateTime);
            }
        }

        public JsonObject Node { get; }

        public long ArchivedRows { get; private set; }

        public void Add(JsonObject batch, int deleted)
        {
            _batches.Add(batch);
            ArchivedRows += deleted;
            Node["archived_rows"] = ArchivedRows;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Archived and deleted {RowCount} {Table} rows {FirstId}-{LastId} as {BlobName}")]
    private partial void LogArchived(int rowCount, string table, long firstId, long lastId, string blobName);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention of {Table} is configured to {RetentionDays} days, shorter than the database's floor: rows are kept until {Cutoff:o}")]
    private partial void LogRaisedToFloor(string table, int retentionDays, DateTimeOffset cutoff);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Finished archive {BlobName} ({RowCount} rows) that an interrupted run uploaded but did not record")]
    private partial void LogRecovered(string blobName, int rowCount);

    [LoggerMessage(Level = LogLevel.Error, Message = "Audit retention of {Table} failed in run {RunId}; nothing of the failed batch was deleted")]
    private partial void LogTableFailed(Exception exception, string table, long runId);
}
