using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Jobs.Tests.Support;

namespace OrderFunctions.Jobs.Tests;

/// <summary>
/// Audit retention against a real PostgreSQL and a real Azurite. Audit rows come from real money movements; then
/// some are moved into the past as admin (session_replication_role = replica skips the append-only triggers).
/// </summary>
public class AuditRetentionJobTests : IAsyncLifetime
{
    /// <summary>Whether the jobs reach the database through PgBouncer (transaction pooling); see the derived class.</summary>
    protected virtual bool ThroughPgBouncer => false;

    private static readonly TimeSpan EightYears = TimeSpan.FromDays(8 * 366);
    private static readonly MaintenanceSettings Settings = new() { AuditLogRetentionDays = 2557, ErrorLogRetentionDays = 90, RetentionBatchSize = 3 };

    private JobsDatabase _db = null!;
    private ArchiveContainer _archive = null!;

    public async Task InitializeAsync()
    {
        _db = await JobsDatabase.CreateAsync(ThroughPgBouncer);
        _archive = await ArchiveContainer.CreateAsync();
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private AuditRetentionJob Job(IArchiveStore? store = null) =>
        new(_db.Orders, store ?? _archive.Store(), Settings, TimeProvider.System, NullLogger<AuditRetentionJob>.Instance);

    [Fact]
    public async Task Audit_retention_archives_and_deletes_exactly_the_rows_past_retention()
    {
        // Arrange
        var seeded = await SeedAsync();
        var expectedAuditLines = await _db.ArchiveLinesAsync(Tables.BalanceAuditLog, seeded.OldAuditMaxId);
        var expectedErrorLines = await _db.ArchiveLinesAsync(Tables.ErrorLog, seeded.OldErrorMaxId);
        var executionLogs = await _db.CountAsync("SELECT count(*) FROM trading.execution_logs");
        Assert.True(expectedAuditLines.Count > Settings.RetentionBatchSize, "the test needs more than one batch");

        // Act
        var run = await Job().RunAsync("test", CancellationToken.None);

        // Assert: the run
        Assert.Equal(JobRun.Succeeded, run.Status);
        Assert.Null(run.Error);
        Assert.Equal(expectedAuditLines.Count, (long?)run.Findings["counts"]![Tables.BalanceAuditLog]);
        Assert.Equal(expectedErrorLines.Count, (long?)run.Findings["counts"]![Tables.ErrorLog]);

        // the old rows are gone, the new ones kept; execution_logs untouched
        Assert.Equal(seeded.NewAuditIds, await _db.IdsAsync(Tables.BalanceAuditLog));
        Assert.Equal(seeded.NewErrorIds, await _db.IdsAsync(Tables.ErrorLog));
        Assert.Equal(executionLogs, await _db.CountAsync("SELECT count(*) FROM trading.execution_logs"));

        // the archive holds exactly those rows, in order, and each manifest describes its blob
        Assert.Equal(expectedAuditLines, await ArchivedLinesAsync(Tables.BalanceAuditLog));
        Assert.Equal(expectedErrorLines, await ArchivedLinesAsync(Tables.ErrorLog));

        // each batch is recorded once, with its blob, and by this run
        var archives = await _db.ArchivesAsync();
        Assert.Equal(archives.Count * 2, (await _archive.BlobsAsync()).Count);
        Assert.All(archives, a => Assert.Equal(run.RunId, a.MaintenanceRunId));
        Assert.Equal(expectedAuditLines.Count, archives.Where(a => a.TableName == Tables.BalanceAuditLog).Sum(a => a.RowCount));
        Assert.All(archives, a => Assert.True(a.RowCount <= Settings.RetentionBatchSize));

        // the ledger still reconciles from the checkpoints
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.ledger_mismatches()"));
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.balance_audit_chain_breaks()"));
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.margin_mismatches()"));
        Assert.Equal(2, await _db.CountAsync("SELECT count(DISTINCT user_id) FROM trading.ledger_checkpoints"));
    }

    [Fact]
    public async Task Audit_retention_does_nothing_on_a_rerun_once_everything_old_is_archived()
    {
        await SeedAsync();
        var first = await Job().RunAsync("test", CancellationToken.None);
        var blobs = (await _archive.BlobsAsync()).Select(b => (b.Name, b.Properties.ETag)).ToList();
        var store = new ForwardingStore(_archive.Store());

        var second = await Job(store).RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, first.Status);
        Assert.Equal(JobRun.Succeeded, second.Status);
        Assert.Equal(0L, (long?)second.Findings["counts"]![Tables.BalanceAuditLog]);
        Assert.Equal(0L, (long?)second.Findings["counts"]![Tables.ErrorLog]);
        Assert.Equal(0, store.Uploads);
        Assert.Equal(blobs, (await _archive.BlobsAsync()).Select(b => (b.Name, b.Properties.ETag)).ToList());
    }

    [Fact]
    public async Task Audit_retention_keeps_everything_when_no_row_is_past_retention()
    {
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        var ids = await _db.IdsAsync(Tables.BalanceAuditLog);

        var run = await Job().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        Assert.Equal(ids, await _db.IdsAsync(Tables.BalanceAuditLog));
        Assert.Empty(await _archive.BlobsAsync());
        Assert.Empty(await _db.ArchivesAsync());
    }

    [Fact]
    public async Task Audit_retention_stops_a_batch_before_a_younger_row_so_no_row_is_left_behind_its_range()
    {
        // Arrange: ids 1..n where one row in the middle is younger than the cutoff (its transaction started later).
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(10_000m);
        for (var i = 0; i < 4; i++)
        {
            await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        }

        var ids = await _db.IdsAsync(Tables.BalanceAuditLog);
        await _db.AgeRowsAsync(Tables.BalanceAuditLog, ids[^1], EightYears);
        await _db.TamperAsync("UPDATE trading.balance_audit_log SET created_at = now() WHERE id = @Id", new { Id = ids[2] });

        // Act
        var run = await Job().RunAsync("test", CancellationToken.None);

        // Assert: only the rows before the young one went; the chain from the checkpoint still holds
        Assert.Equal(JobRun.Succeeded, run.Status);
        Assert.Equal(ids[2..], await _db.IdsAsync(Tables.BalanceAuditLog));
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.balance_audit_chain_breaks()"));
        Assert.Equal(0, await _db.CountAsync("SELECT count(*) FROM trading.ledger_mismatches()"));
    }

    [Fact]
    public async Task Audit_retention_configured_shorter_than_the_database_floor_keeps_what_the_floor_keeps()
    {
        // Arrange: rows 3 years (audit) and 30 days (errors) old, retention configured to one day for both.
        var symbol = await _db.NewInstrumentAsync();
        var user = await _db.NewTraderAsync(1_000m);
        await _db.ExecutedOrderAsync(user, symbol, "buy", 1m);
        await _db.ExecuteOrderAsync(user, symbol, "buy", 1_000_000m);
        await _db.AgeRowsAsync(Tables.BalanceAuditLog, await _db.MaxIdAsync(Tables.BalanceAuditLog), TimeSpan.FromDays(3 * 365));
        await _db.AgeRowsAsync(Tables.ErrorLog, await _db.MaxIdAsync(Tables.ErrorLog), TimeSpan.FromDays(30));
        var (auditIds, errorIds) = (await _db.IdsAsync(Tables.BalanceAuditLog), await _db.IdsAsync(Tables.ErrorLog));
        var job = new AuditRetentionJob(_db.Orders, _archive.Store(), Settings with { AuditLogRetentionDays = 1, ErrorLogRetentionDays = 1 },
            TimeProvider.System, NullLogger<AuditRetentionJob>.Instance);

        // Act
        var run = await job.RunAsync("test", CancellationToken.None);

        // Assert: a successful run that deleted nothing: the floor (7 years, 90 days) is the cutoff it used
        Assert.Equal(JobRun.Succeeded, run.Status);
        Assert.Equal(auditIds, await _db.IdsAsync(Tables.BalanceAuditLog));
        Assert.Equal(errorIds, await _db.IdsAsync(Tables.ErrorLog));
        Assert.Empty(await _archive.BlobsAsync());
        foreach (var (table, floor) in new[] { (Tables.BalanceAuditLog, DateTime.UtcNow.AddYears(-7)), (Tables.ErrorLog, DateTime.UtcNow.AddDays(-90)) })
        {
            var cutoff = DateTime.Parse((string)run.Findings[table]!["cutoff"]!, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AdjustToUniversal);
            Assert.Equal((string?)run.Findings[table]!["floor_cutoff"], (string?)run.Findings[table]!["cutoff"]);
            Assert.True(Math.Abs((cutoff - floor).TotalMinutes) < 5, $"{table}: cutoff {cutoff:o}, floor about {floor:o}");
        }
    }

    /// <summary>
    /// Two traders trade; all their audit rows so far become 8 years old. Then more trading (new rows, one of them
    /// by a trader with old rows), an old and a new error_log row (business rejections write them).
    /// </summary>
    private async Task<Seeded> SeedAsync()
    {
        var symbol = await _db.NewInstrumentAsync();
        var alice = await _db.NewTraderAsync(10_000m);
        var bob = await _db.NewTraderAsync(5_000m);
        await _db.ExecutedOrderAsync(alice, symbol, "buy", 2m);
        await _db.ExecutedOrderAsync(bob, symbol, "sell", 1m);
        await _db.ExecutedOrderAsync(alice, symbol, "sell", 1m);
        await _db.ExecutedOrderAsync(bob, symbol, "buy", 2m);
        await _db.DepositAsync(alice, 100m);
        var oldAuditMaxId = await _db.MaxIdAsync(Tables.BalanceAuditLog);
        await _db.ExecuteOrderAsync(alice, symbol, "buy", 1_000_000m);
        var oldErrorMaxId = await _db.MaxIdAsync(Tables.ErrorLog);
        Assert.True(oldErrorMaxId > 0, "a rejected order writes an error_log row");

        await _db.ExecutedOrderAsync(alice, symbol, "buy", 1m);
        await _db.NewTraderAsync(300m);
        await _db.ExecuteOrderAsync(bob, symbol, "buy", 1_000_000m);

        await _db.AgeRowsAsync(Tables.BalanceAuditLog, oldAuditMaxId, EightYears);
        await _db.AgeRowsAsync(Tables.ErrorLog, oldErrorMaxId, TimeSpan.FromDays(100));
        var newAuditIds = (await _db.IdsAsync(Tables.BalanceAuditLog)).Where(id => id > oldAuditMaxId).ToList();
        var newErrorIds = (await _db.IdsAsync(Tables.ErrorLog)).Where(id => id > oldErrorMaxId).ToList();
        Assert.NotEmpty(newAuditIds);
        Assert.NotEmpty(newErrorIds);
        return new Seeded(oldAuditMaxId, oldErrorMaxId, newAuditIds, newErrorIds);
    }

    /// <summary>The lines of every archive of the table, in blob name (= id) order, each checked against its manifest.</summary>
    private async Task<List<string>> ArchivedLinesAsync(string table)
    {
        var lines = new List<string>();
        foreach (var name in await _archive.BlobNamesAsync(table + "/"))
        {
            if (!name.EndsWith(".ndjson.gz", StringComparison.Ordinal))
            {
                continue;
            }

            var content = await _archive.GunzipAsync(name);
            var manifest = await _archive.ManifestAsync(name.Replace(".ndjson.gz", ".manifest.json", StringComparison.Ordinal));
            var batch = Encoding.UTF8.GetString(content).Split('\n')[..^1];
            Assert.Equal(table, (string?)manifest["table"]);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), (string?)manifest["sha256"]);
            Assert.Equal(batch.Length, (int?)manifest["row_count"]);
            Assert.Equal((long?)JsonNode.Parse(batch[0])!["id"], (long?)manifest["first_id"]);
            Assert.Equal((long?)JsonNode.Parse(batch[^1])!["id"], (long?)manifest["last_id"]);
            Assert.Equal(name, (string?)manifest["blob_name"]);
            var archive = Assert.Single(await _db.ArchivesAsync(), a => a.BlobName == name);
            Assert.Equal(((string?)manifest["sha256"], batch.Length), (archive.Sha256, archive.RowCount));
            lines.AddRange(batch);
        }

        return lines;
    }

    private sealed record Seeded(long OldAuditMaxId, long OldErrorMaxId, List<long> NewAuditIds, List<long> NewErrorIds);
}
