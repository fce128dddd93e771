using Azure.Storage.Blobs;
using OrderFunctions.Testing;

namespace OrderFunctions.Testing.Tests;

public sealed class AzuriteServerTests
{
    [Fact]
    public async Task Azurite_returns_the_bytes_of_an_uploaded_blob()
    {
        var azurite = await AzuriteServer.GetAsync();
        var container = azurite.CreateBlobServiceClient().GetBlobContainerClient($"test-{Guid.NewGuid():N}");
        await container.CreateAsync();
        try
        {
            var blob = container.GetBlobClient("archive/part-0001.ndjson.gz");
            var content = BinaryData.FromBytes([0x1f, 0x8b, 1, 2, 3]);

            await blob.UploadAsync(content);
            var downloaded = await blob.DownloadContentAsync();

            Assert.Equal(content.ToArray(), downloaded.Value.Content.ToArray());
        }
        finally
        {
            await container.DeleteAsync();
        }
    }

    [Fact]
    public async Task Azurite_is_the_same_server_for_every_caller_in_a_process()
    {
        var first = await AzuriteServer.GetAsync();
        var second = await AzuriteServer.GetAsync();

        Assert.Same(first, second);
        Assert.StartsWith("DefaultEndpointsProtocol=", first.ConnectionString, StringComparison.Ordinal);
    }
}
