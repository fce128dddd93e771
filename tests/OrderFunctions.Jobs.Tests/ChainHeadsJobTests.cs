using System.Text;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using OrderFunctions.Core.Configuration;
using OrderFunctions.Core.Jobs;
using OrderFunctions.Jobs.Tests.Support;
using OrderFunctions.Testing;

namespace OrderFunctions.Jobs.Tests;

/// <summary>
/// The chain-heads job publishes every account's chain heads to the write-once archive (a real Azurite), and the
/// orphan scan compares the database with the last publication: an owner who rewrites history, recomputes every hash
/// and moves the chain checkpoints along is caught by name.
/// </summary>
public sealed class ChainHeadsJobTests : IAsyncLifetime
{
    private JobsDatabase _db = null!;
    private ArchiveContainer _archive = null!;
    private PublishedChainHeads _published = null!;

    public async Task InitializeAsync()
    {
        _db = await JobsDatabase.CreateAsync();
        _archive = await ArchiveContainer.CreateAsync();
        _published = new PublishedChainHeads(_archive.Store(), TimeProvider.System);
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private ChainHeadsJob Publisher() => new(_db.Orders, _archive.Store(), _published, NullLogger<ChainHeadsJob>.Instance);

    private OrphanScanJob Scan() => new(_db.Orders, new MaintenanceSettings(), _db.Risk(), new PublishedChainHeads(_archive.Store(), TimeProvider.System),
        NullLogger<OrphanScanJob>.Instance);

    [Fact]
    public async Task Chain_heads_are_published_write_once_as_every_accounts_heads_with_a_manifest()
    {
        // Arrange
        var (alice, bob) = await TwoTradersAsync();
        var expected = (await _db.AdminAsync(c => c.QueryAsync<string>("SELECT line FROM trading.chain_heads()"))).ToList();

        // Act
        var run = await Publisher().RunAsync("test", CancellationToken.None);

        // Assert: one data blob and its manifest in today's folder, holding exactly chain_heads()
        Assert.Equal(JobRun.Succeeded, run.Status);
        var blobName = (string)run.Findings["blob_name"]!;
        Assert.StartsWith($"chain-heads/{DateTime.UtcNow:yyyy/MM/dd}/", blobName, StringComparison.Ordinal);
        Assert.Equal(new[] { blobName, (string)run.Findings["manifest_blob_name"]! }.Order(StringComparer.Ordinal),
            (await _archive.BlobsAsync()).Select(b => b.Name).Order(StringComparer.Ordinal));
        Assert.Equal(expected, Encoding.UTF8.GetString(await _archive.GunzipAsync(blobName)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(2, (int)run.Findings["accounts"]!);
        var latest = await new PublishedChainHeads(_archive.Store(), TimeProvider.System).LatestAsync(fresh: true, CancellationToken.None);
        Assert.Equal(blobName, latest!.BlobName);
        Assert.Equal(new[] { alice, bob }.Order(), latest.Heads.Keys.Order());
        Assert.Contains("\"seq\": 2", latest.Heads[alice], StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_latest_publication_is_the_one_read_back_and_an_unfinished_one_is_ignored()
    {
        await TwoTradersAsync();
        await Publisher().RunAsync("test", CancellationToken.None);
        var second = await Publisher().RunAsync("test", CancellationToken.None);
        // A later data blob whose manifest never got written (the run died between the two uploads).
        await _archive.Store().CreateAsync($"chain-heads/{DateTime.UtcNow:yyyy/MM/dd}/{DateTime.UtcNow:yyyyMMdd}T235959999999Z-9999999999999999999.ndjson.gz",
            [1, 2, 3], "application/gzip", CancellationToken.None);

        var latest = await new PublishedChainHeads(_archive.Store(), TimeProvider.System).LatestAsync(fresh: true, CancellationToken.None);

        Assert.Equal((string)second.Findings["blob_name"]!, latest!.BlobName);
    }

    [Fact]
    public async Task Orphan_scan_names_a_history_rewritten_and_rehashed_by_the_owner_against_the_published_heads()
    {
        // Arrange: verified and published; then the owner rewrites alice's first row, rehashes and moves her checkpoint
        var (alice, _) = await TwoTradersAsync();
        Assert.Equal(JobRun.Succeeded, (await Scan().RunAsync("test", CancellationToken.None)).Status);
        await Publisher().RunAsync("test", CancellationToken.None);
        await OwnerTampering.RewriteAndRehashExecutionLogAsync(_db.Fixture.AdminConnectionString, alice, 1);

        // Act
        var run = await Scan().RunAsync("test", CancellationToken.None);

        // Assert: the database's own chain check sees nothing; the published heads name alice's execution log
        Assert.Equal(0L, (long?)run.Findings["counts"]!["execution_log_chain_breaks"]);
        Assert.Equal(1L, (long?)run.Findings["counts"]![OrphanScanJob.PublishedHeadMismatches]);
        var found = Assert.Single(run.Findings[OrphanScanJob.PublishedHeadMismatches]!.AsArray());
        Assert.Equal((alice.ToString(), "execution_log", 2L), ((string?)found!["user_id"], (string?)found["chain"], (long?)found["position"]));
        Assert.True((bool)run.Findings["published_heads"]!["compared"]!);
    }

    [Fact]
    public async Task Orphan_scan_says_it_compared_nothing_while_no_heads_are_published()
    {
        await TwoTradersAsync();

        var run = await Scan().RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Succeeded, run.Status);
        Assert.False((bool)run.Findings["published_heads"]!["compared"]!);
        Assert.Equal(0L, (long?)run.Findings["counts"]![OrphanScanJob.PublishedHeadMismatches]);
    }

    [Fact]
    public async Task Chain_heads_job_fails_the_run_and_publishes_nothing_when_the_archive_is_unreachable()
    {
        await TwoTradersAsync();
        var job = new ChainHeadsJob(_db.Orders, ArchiveContainer.UnreachableStore(), _published, NullLogger<ChainHeadsJob>.Instance);

        var run = await job.RunAsync("test", CancellationToken.None);

        Assert.Equal(JobRun.Failed, run.Status);
        Assert.Contains("blob storage", run.Error, StringComparison.Ordinal);
    }

    private async Task<(Guid Alice, Guid Bob)> TwoTradersAsync()
    {
        var symbol = await _db.NewInstrumentAsync();
        var alice = await _db.NewTraderAsync(10_000m);
        var bob = await _db.NewTraderAsync(5_000m);
        await _db.ExecutedOrderAsync(alice, symbol, "buy", 2m);
        await _db.ExecutedOrderAsync(alice, symbol, "sell", 1m);
        await _db.ExecutedOrderAsync(bob, symbol, "buy", 1m);
        return (alice, bob);
    }
}
